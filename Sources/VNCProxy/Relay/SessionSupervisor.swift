import Foundation
import NIOCore
import NIOWebSocket

/// The time-based policies of a session: keepalive pings on both legs, idle timeout, maximum length,
/// and the token's expiry. Runs on the session's event loop; `stop()` cancels everything.
final class SessionSupervisor {
    struct Policy: Sendable {
        var pingInterval: TimeAmount?
        var idleTimeout: TimeAmount?
        var maxDuration: TimeAmount?
        /// Seconds since 1970 after which the session ends with 1008; nil when not enforced.
        var tokenExpiry: Double?
    }

    private let client: RelayHandler
    private let upstream: RelayHandler
    private let eventLoop: EventLoop
    /// The pending timer of each policy, by name; a repeating one replaces itself.
    private var timers: [String: Scheduled<Void>] = [:]
    private var stopped = false

    init(client: RelayHandler, upstream: RelayHandler, eventLoop: EventLoop) {
        self.client = client
        self.upstream = upstream
        self.eventLoop = eventLoop
    }

    func start(_ policy: Policy) {
        let loop = self.eventLoop.assumeIsolated()
        if let interval = policy.pingInterval {
            self.every(interval, name: "ping") { $0.keepalive() }
        }
        if let idle = policy.idleTimeout {
            self.every(max(.milliseconds(50), .nanoseconds(idle.nanoseconds / 4)), name: "idle") { supervisor in
                if NIODeadline.now() - supervisor.client.session.lastActivity >= idle {
                    supervisor.end(code: .goingAway, reason: "idle timeout")
                }
            }
        }
        if let limit = policy.maxDuration {
            self.timers["duration"] = loop.scheduleTask(in: limit) {
                self.end(code: .policyViolation, reason: "session time limit reached")
            }
        }
        if let expiry = policy.tokenExpiry {
            let remaining = max(0, expiry - Date().timeIntervalSince1970)
            self.timers["token"] = loop.scheduleTask(in: .milliseconds(Int64(remaining * 1000))) {
                self.end(code: .policyViolation, reason: "token expired")
            }
        }
    }

    func stop() {
        self.stopped = true
        self.timers.values.forEach { $0.cancel() }
        self.timers = [:]
    }

    /// Runs `body` every `interval` until `stop()`.
    private func every(_ interval: TimeAmount, name: String, _ body: @escaping (SessionSupervisor) -> Void) {
        self.timers[name] = self.eventLoop.assumeIsolated().scheduleTask(in: interval) {
            guard !self.stopped else { return }
            body(self)
            guard !self.stopped else { return }
            self.every(interval, name: name, body)
        }
    }

    /// A leg that left the last ping unanswered is gone; otherwise ping both again.
    private func keepalive() {
        for half in [self.client, self.upstream] where half.awaitingPong {
            self.end(code: .goingAway, reason: "\(half.peer.rawValue) did not answer ping")
            return
        }
        self.client.sendPing()
        self.upstream.sendPing()
    }

    private func end(code: WebSocketErrorCode, reason: String) {
        self.client.session.noteEnd(reason)
        self.client.sendClose(code: code, reason: reason)
        self.upstream.sendClose(code: .goingAway, reason: reason)
        self.stop()
    }
}
