import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A JWKS file of public keys, re-read when it changes (a mounted ConfigMap or Secret, rotated keys).
///
/// The verifier only reads the current key set. The file is looked at by `watch(on:)` at most once a
/// second, on NIO's blocking-I/O thread pool, never on an event loop. A new file that cannot be read
/// or parsed keeps the last good keys and logs one warning per change.
public final class JWKSFile: Sendable {
    public let path: String
    private let logger: Logger
    private let current: NIOLockedValueBox<Loaded>
    /// Serialises reloads (the watcher and a direct call) without holding the lock the verifier reads.
    private let reloading = NIOLock()
    private let checkQueued = NIOLockedValueBox(false)

    private struct Loaded {
        var keys: KeySet
        /// What the file looked like when last read, good or broken: each change is read once.
        var stamp: FileStamp?
    }

    /// Enough of `stat` to notice a changed file, including a replaced one (new inode) and a
    /// Kubernetes volume's symlink swap (a new resolved path).
    struct FileStamp: Equatable {
        var resolvedPath: String
        var modified: Date?
        var size: UInt64?
        var inode: UInt64?
    }

    /// Reads the file now: an unreadable file, or one without a usable key, stops the start.
    public init(path: String, logger: Logger = Logger(label: "vnc-proxy")) throws(ConfigurationError) {
        self.path = path
        self.logger = logger
        let stamp = Self.stamp(of: path)
        let keys: KeySet
        do {
            keys = try Self.read(path)
        } catch {
            throw ConfigurationError("JWKS file \(path): \(error.description)")
        }
        self.current = NIOLockedValueBox(Loaded(keys: keys, stamp: stamp))
        self.logSkipped(keys)
    }

    /// The keys of the last good file.
    var keys: KeySet {
        self.current.withLockedValue { $0.keys }
    }

    /// Reads the file again if it changed since the last look. Returns whether new keys were taken.
    /// Blocks on file I/O: call it off the event loops.
    @discardableResult
    public func reloadIfChanged() -> Bool {
        self.reloading.withLock {
            let stamp = Self.stamp(of: self.path)
            guard stamp != self.current.withLockedValue({ $0.stamp }) else { return false }
            do {
                let keys = try Self.read(self.path)
                self.current.withLockedValue { $0 = Loaded(keys: keys, stamp: stamp) }
                self.logger.info("JWKS file reloaded", metadata: [
                    "path": "\(self.path)", "kids": "\(keys.keys.map(\.kid).joined(separator: ","))",
                ])
                self.logSkipped(keys)
                return true
            } catch {
                self.current.withLockedValue { $0.stamp = stamp }
                self.logger.warning("JWKS file changed but cannot be used; keeping the last good keys", metadata: [
                    "path": "\(self.path)", "reason": "\(error)",
                ])
                return false
            }
        }
    }

    /// Looks at the file every `interval` until the returned task is cancelled or `eventLoop` shuts
    /// down. A look that is still running (a slow volume) is not queued again.
    func watch(on eventLoop: any EventLoop, every interval: TimeAmount = .seconds(1)) -> RepeatedTask {
        eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let alreadyQueued = self.checkQueued.withLockedValue { queued in
                defer { queued = true }
                return queued
            }
            guard !alreadyQueued else { return }
            NIOThreadPool.singleton.submit { _ in
                self.reloadIfChanged()
                self.checkQueued.withLockedValue { $0 = false }
            }
        }
    }

    private static func read(_ path: String) throws(ConfigurationError) -> KeySet {
        guard let data = FileManager.default.contents(atPath: path) else { throw ConfigurationError("cannot read it") }
        guard data.count <= 1 << 20 else { throw ConfigurationError("larger than 1 MiB") }
        return try KeySet(jwks: data)
    }

    private static func stamp(of path: String) -> FileStamp? {
        // Kubernetes updates a mounted file by swapping a symlink, so look through it.
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: resolved) else { return nil }
        return FileStamp(
            resolvedPath: resolved,
            modified: attributes[.modificationDate] as? Date,
            size: (attributes[.size] as? NSNumber)?.uint64Value,
            inode: (attributes[.systemFileNumber] as? NSNumber)?.uint64Value)
    }

    private func logSkipped(_ keys: KeySet) {
        for entry in keys.skipped {
            self.logger.notice("JWKS key not used", metadata: ["path": "\(self.path)", "key": "\(entry)"])
        }
    }
}
