import Logging
import NIOCore

/// One console connection through the proxy: who it is for, what it carried, how it ended.
/// Lives on the client channel's event loop, which the upstream channel shares.
final class ProxySession {
    let namespace: String
    let vmName: String
    let subject: String
    let clientAddress: String
    let logger: Logger
    private let startedAt = NIODeadline.now()
    var bytesToVM = 0
    var bytesToClient = 0
    /// When a data byte last crossed, either way; the idle timeout counts from here.
    var lastActivity = NIODeadline.now()
    /// The first reason the session started to end; later ones are consequences.
    private(set) var endReason: String?

    init(namespace: String, vmName: String, subject: String, clientAddress: String, logger: Logger) {
        self.namespace = namespace
        self.vmName = vmName
        self.subject = subject
        self.clientAddress = clientAddress
        self.logger = logger
    }

    func noteEnd(_ reason: String) {
        if self.endReason == nil { self.endReason = reason }
    }

    func logStart(subprotocol: String?) {
        self.logger.info("session started", metadata: self.metadata.merging(
            ["subprotocol": "\(subprotocol ?? "none")"], uniquingKeysWith: { $1 }))
    }

    func logEnd() {
        let duration = Double((NIODeadline.now() - self.startedAt).nanoseconds) / 1e9
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
