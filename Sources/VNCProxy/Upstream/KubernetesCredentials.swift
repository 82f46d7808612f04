import Foundation
import NIOSSL

/// The proxy's own identity toward the API server: the service-account CA and bearer token.
struct KubernetesCredentials: Sendable {
    /// Built once: a TLS context is expensive, and the cluster CA changes only with a new pod.
    let tlsContext: NIOSSLContext?
    private let tokenFilePath: String?

    /// Local dev mode: no TLS and no bearer token.
    static let none = KubernetesCredentials(tlsContext: nil, tokenFilePath: nil)

    private init(tlsContext: NIOSSLContext?, tokenFilePath: String?) {
        self.tlsContext = tlsContext
        self.tokenFilePath = tokenFilePath
    }

    /// Loads the CA bundle and checks the token file is readable now, so a broken mount fails at start.
    init(caFilePath: String, tokenFilePath: String, useTLS: Bool) throws(ConfigurationError) {
        var context: NIOSSLContext?
        if useTLS {
            do {
                let roots = try NIOSSLCertificate.fromPEMFile(caFilePath)
                guard !roots.isEmpty else { throw ConfigurationError("CA file \(caFilePath) holds no certificate") }
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.trustRoots = .certificates(roots)
                tls.certificateVerification = .fullVerification
                context = try NIOSSLContext(configuration: tls)
            } catch let error as ConfigurationError {
                throw error
            } catch {
                throw ConfigurationError("cannot read CA file \(caFilePath): \(error)")
            }
        }
        self.tlsContext = context
        self.tokenFilePath = tokenFilePath
        _ = try Self.readToken(at: tokenFilePath)
    }

    /// The current bearer token. The kubelet swaps the file when it rotates the projected token,
    /// so the path is opened again for every upstream connection.
    func bearerToken() throws(ConfigurationError) -> String? {
        guard let path = self.tokenFilePath else { return nil }
        return try Self.readToken(at: path)
    }

    private static func readToken(at path: String) throws(ConfigurationError) -> String {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 64 * 1024,
              let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError("cannot read token file \(path)")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty, !token.contains(where: { $0.isNewline }) else {
            throw ConfigurationError("token file \(path) is empty or not a single token")
        }
        return token
    }
}
