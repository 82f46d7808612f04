import NIOCore
import NIOHTTP1
import WebSocketSupport

/// The `--admin-port` listener: probes and metrics only, kept off the public port so `/metrics`
/// is not served to the internet.
struct AdminResponder: UpgradeResponder {
    let readiness: Readiness
    let metricsEndpoint: MetricsEndpoint?

    func decide(_ request: IncomingRequest, channel: Channel) -> EventLoopFuture<UpgradeDecision> {
        let decision: UpgradeDecision
        if let probe = HealthProbe(uri: request.head.uri) {
            decision = probe.answer(readiness: self.readiness)
        } else if let metricsEndpoint, MetricsEndpoint.matches(uri: request.head.uri) {
            decision = metricsEndpoint.answer(allocator: channel.allocator)
        } else {
            decision = ProxyError.notFound.answer()
        }
        return channel.eventLoop.makeSucceededFuture(decision)
    }

    func protocolError(status: HTTPResponseStatus, reason: String, allocator: ByteBufferAllocator) -> UpgradeDecision {
        ProxyError(status, "bad_request", reason).answer()
    }
}
