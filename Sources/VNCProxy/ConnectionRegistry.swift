import NIOConcurrencyHelpers
import NIOCore

/// Every accepted connection of a running proxy, so `stop()` can end them all and wait for them.
final class ConnectionRegistry: Sendable {
    private struct Entry {
        var channel: Channel
        /// Set once the connection is a relaying session: starts its close handshake on both legs.
        var closeSession: (@Sendable () -> Void)?
    }

    private let entries = NIOLockedValueBox<[ObjectIdentifier: Entry]>([:])
    private let drainingFlag = NIOLockedValueBox(false)

    var isDraining: Bool { self.drainingFlag.withLockedValue { $0 } }
    var connectionCount: Int { self.entries.withLockedValue { $0.count } }
    var sessionCount: Int { self.entries.withLockedValue { $0.values.filter { $0.closeSession != nil }.count } }

    func track(_ channel: Channel) {
        let id = ObjectIdentifier(channel)
        self.entries.withLockedValue { $0[id] = Entry(channel: channel) }
        channel.closeFuture.whenComplete { _ in
            _ = self.entries.withLockedValue { $0.removeValue(forKey: id) }
        }
    }

    func markSession(_ channel: Channel, close: @escaping @Sendable () -> Void) {
        self.entries.withLockedValue { $0[ObjectIdentifier(channel)]?.closeSession = close }
    }

    func reset() {
        self.drainingFlag.withLockedValue { $0 = false }
    }

    /// Refuses new sessions from now on (they get 503) and turns readiness false.
    func beginDraining() {
        self.drainingFlag.withLockedValue { $0 = true }
    }

    /// Refuses new sessions from now on, asks every session to close, closes every other connection,
    /// and returns the futures of all those channels closing.
    func drain() -> [EventLoopFuture<Void>] {
        self.beginDraining()
        let entries = self.entries.withLockedValue { Array($0.values) }
        for entry in entries {
            if let closeSession = entry.closeSession {
                closeSession()
            } else {
                entry.channel.close(promise: nil)
            }
        }
        return entries.map { $0.channel.closeFuture }
    }

    func closeAll() {
        for entry in self.entries.withLockedValue({ Array($0.values) }) {
            entry.channel.close(promise: nil)
        }
    }
}
