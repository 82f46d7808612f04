import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOSSL

/// The listener's certificate and key (`--tls-cert`, `--tls-key`), reloaded when either file changes:
/// cert-manager and Kubernetes secret volumes replace certificates in place, and a proxy holding
/// hours-long sessions should not need a restart to pick up a renewal. Existing connections keep
/// the context they started with; new ones get the new one.
final class ListenerTLS: Sendable {
    private let certificatePath: String
    private let keyPath: String
    private let loaded: NIOLockedValueBox<(context: NIOSSLContext, stamp: FileStamp)>

    /// What tells us a file changed without reading it: secret volumes swap a symlink, so the
    /// inode changes too; editors and `cp` change the modification time or size.
    struct FileStamp: Equatable {
        var certificate: [Int]
        var key: [Int]
    }

    init(certificatePath: String, keyPath: String) throws {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        let stamp = Self.stamp(certificatePath: certificatePath, keyPath: keyPath)
        let context: NIOSSLContext
        do {
            context = try Self.makeContext(certificatePath: certificatePath, keyPath: keyPath)
        } catch {
            throw ConfigurationError("cannot use the listener's TLS certificate \(certificatePath) and key \(keyPath): \(error)")
        }
        self.loaded = NIOLockedValueBox((context, stamp))
    }

    /// The context for a new connection.
    var context: NIOSSLContext { self.loaded.withLockedValue { $0.context } }

    /// Loads the files again if they changed since the last look. A pair that does not load (a renewal
    /// caught half-written) is reported and the previous context kept; the next change is tried again.
    /// Returns whether a new context is in use. Reads files: call it off the event loops.
    @discardableResult
    func reloadIfChanged(logger: Logger) -> Bool {
        let stamp = Self.stamp(certificatePath: self.certificatePath, keyPath: self.keyPath)
        guard stamp != self.loaded.withLockedValue({ $0.stamp }) else { return false }
        do {
            let context = try Self.makeContext(certificatePath: self.certificatePath, keyPath: self.keyPath)
            self.loaded.withLockedValue { $0 = (context, stamp) }
            logger.notice("listener TLS certificate reloaded", metadata: ["certificate": "\(self.certificatePath)"])
            return true
        } catch {
            self.loaded.withLockedValue { $0.stamp = stamp }
            logger.warning("listener TLS certificate changed but does not load; keeping the previous one",
                           metadata: ["certificate": "\(self.certificatePath)", "error": "\(error)"])
            return false
        }
    }

    private static func makeContext(certificatePath: String, keyPath: String) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        guard !chain.isEmpty else { throw ConfigurationError("no certificate in \(certificatePath)") }
        let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        // Websockets are HTTP/1.1 upgrades; a browser offering h2 must be told to use http/1.1.
        configuration.applicationProtocols = ["http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }

    private static func stamp(certificatePath: String, keyPath: String) -> FileStamp {
        FileStamp(certificate: self.stamp(of: certificatePath), key: self.stamp(of: keyPath))
    }

    private static func stamp(of path: String) -> [Int] {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return [] }
        let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return [Int(modified * 1_000_000), (attributes[.size] as? Int) ?? 0, (attributes[.systemFileNumber] as? Int) ?? 0]
    }
}
