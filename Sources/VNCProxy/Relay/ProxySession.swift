import Logging
import NIOCore

/// One console connection through the proxy: who it is for, what it carried, how it ended.
/// Lives on the client channel's event loop, which the upstream channel shares.
final class ProxySession {
    let namespace: String
    let vmName: String
    let subject: String
    let clientAddress: String
    let metrics: ProxyMetrics
    let logger: Logger
    private let startedAt = NIODeadline.now()
    private(set) var bytesToVM = 0
    private(set) var bytesToClient = 0
    /// When a data byte last crossed, either way; the idle timeout counts from here.
    var lastActivity = NIODeadline.now()
    /// The first reason the session started to end; later ones are consequences.
    private(set) var endReason: String?
    private var isOpen = false

    init(namespace: String, vmName: String, subject: String, clientAddress: String, metrics: ProxyMetrics, logger: Logger) {
        self.namespace = namespace
        self.vmName = vmName
        self.subject = subject
        self.clientAddress = clientAddress
        self.metrics = metrics
        self.logger = logger
    }

    func noteEnd(_ reason: String) {
        if self.endReason == nil { self.endReason = reason }
    }

    func relayedToVM(_ count: Int) {
        self.bytesToVM += count
        self.metrics.bytesToVM.increment(by: count)
    }

    func relayedToClient(_ count: Int) {
        self.bytesToClient += count
        self.metrics.bytesToClient.increment(by: count)
    }

    /// The 101 has gone out: the session counts as open from here.
    func started(subprotocol: String?) {
        self.isOpen = true
        self.metrics.countRequest(outcome: ProxyMetrics.sessionOpened)
        self.metrics.activeSessions.increment()
        self.logger.info("session started", metadata: self.metadata.merging(
            ["subprotocol": "\(subprotocol ?? "none")"], uniquingKeysWith: { $1 }))
    }

    /// Both legs have closed. A session that never opened (its upgrade failed) was counted as refused.
    func ended() {
        guard self.isOpen else { return }
        self.isOpen = false
        let elapsed = NIODeadline.now() - self.startedAt
        self.metrics.activeSessions.decrement()
        self.metrics.sessionDurations.recordNanoseconds(elapsed.nanoseconds)
        let duration = Double(elapsed.nanoseconds) / 1e9
        self.logger.info("session ended", metadata: self.metadata.merging([
            "bytes_to_vm": "\(self.bytesToVM)",
            "bytes_to_client": "\(self.bytesToClient)",
            "duration_s": "\((duration * 1000).rounded() / 1000)",
            "reason": "\(self.endReason ?? "connection closed")",
        ], uniquingKeysWith: { $1 }))
    }

    private var metadata: Logger.Metadata {
        ["client": "\(self.clientAddress)", "namespace": "\(self.namespace)", "vm": "\(self.vmName)", "subject": "\(self.subject)"]
    }
}
