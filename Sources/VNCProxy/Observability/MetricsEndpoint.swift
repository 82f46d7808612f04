import NIOCore
import NIOHTTP1
import Prometheus
import WebSocketSupport

/// `/metrics` in the Prometheus text exposition format (version 0.0.4).
struct MetricsEndpoint: Sendable {
    static let path = "/metrics"

    let registry: PrometheusCollectorRegistry

    static func matches(uri: String) -> Bool {
        uri.prefix(while: { $0 != "?" }) == Self.path
    }

    func answer(allocator: ByteBufferAllocator) -> UpgradeDecision {
        var bytes: [UInt8] = []
        self.registry.emit(into: &bytes)
        var body = allocator.buffer(capacity: bytes.count)
        body.writeBytes(bytes)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; version=0.0.4; charset=utf-8")
        headers.add(name: "cache-control", value: "no-store")
        return .respond(status: .ok, headers: headers, body: body)
    }
}
