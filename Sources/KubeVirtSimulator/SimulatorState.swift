import NIOConcurrencyHelpers
import NIOCore

/// A request as the simulated API server saw it, for tests to inspect.
public struct RecordedRequest: Sendable, Equatable {
    public var uri: String
    public var authorization: String?
    public var subprotocols: [String]
}

/// A key press or release that reached a built-in RFB console.
public struct RecordedKeyEvent: Sendable, Equatable {
    public var namespace: String
    public var vmi: String
    public var keysym: UInt32
    public var down: Bool
}

/// What the simulator has seen, and its one-session-per-VMI rule.
final class SimulatorState: Sendable {
    private struct Contents {
        var requests: [RecordedRequest] = []
        var keyEvents: [RecordedKeyEvent] = []
        var sessions: [String: Channel] = [:]
    }

    private let contents = NIOLockedValueBox(Contents())
    private static let maxRecorded = 10_000

    func record(_ request: RecordedRequest) {
        self.contents.withLockedValue {
            if $0.requests.count >= Self.maxRecorded { $0.requests.removeFirst() }
            $0.requests.append(request)
        }
    }

    func keyEvent(namespace: String, name: String, key: UInt32, down: Bool) {
        self.contents.withLockedValue {
            if $0.keyEvents.count >= Self.maxRecorded { $0.keyEvents.removeFirst() }
            $0.keyEvents.append(RecordedKeyEvent(namespace: namespace, vmi: name, keysym: key, down: down))
        }
    }

    /// virt-handler keeps one VNC stream per VMI: a new one displaces the old without a close frame.
    func sessionStarted(namespace: String, name: String, channel: Channel) {
        let key = namespace + "/" + name
        let displaced = self.contents.withLockedValue { $0.sessions.updateValue(channel, forKey: key) }
        displaced?.close(promise: nil)
        channel.closeFuture.whenComplete { _ in
            self.contents.withLockedValue { contents in
                if contents.sessions[key] === channel { contents.sessions[key] = nil }
            }
        }
    }

    var requests: [RecordedRequest] { self.contents.withLockedValue { $0.requests } }
    var keyEvents: [RecordedKeyEvent] { self.contents.withLockedValue { $0.keyEvents } }
    var sessionCount: Int { self.contents.withLockedValue { $0.sessions.count } }
}
