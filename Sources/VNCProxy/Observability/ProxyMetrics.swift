import CoreMetrics
import Prometheus

/// What the proxy counts, made through swift-metrics with one factory per proxy, so two proxies in a
/// process (tests, an embedding app) keep separate figures.
///
/// By default the factory is a Prometheus registry of the proxy's own, served at `/metrics`; an
/// embedding app may pass the factory of its own metrics backend instead.
struct ProxyMetrics: Sendable {
    static let sessionsActive = "vnc_proxy_sessions_active"
    static let sessionsTotal = "vnc_proxy_sessions_total"
    static let bytesTotal = "vnc_proxy_bytes_total"
    static let sessionDuration = "vnc_proxy_session_duration_seconds"
    static let upstreamHandshake = "vnc_proxy_upstream_handshake_seconds"

    /// The outcome of a request that became a relaying session; refusals are labelled by their error code.
    static let sessionOpened = "ok"

    private let factory: any MetricsFactory
    /// Present when the proxy owns a Prometheus registry (and serves it).
    let registry: PrometheusCollectorRegistry?
    let activeSessions: Meter
    let bytesToVM: CoreMetrics.Counter
    let bytesToClient: CoreMetrics.Counter
    let sessionDurations: CoreMetrics.Timer
    let upstreamHandshakes: CoreMetrics.Timer

    /// Metrics in a Prometheus registry of their own, with buckets that suit console sessions.
    init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            // A console session lasts from seconds (a glance) to a lab's whole afternoon.
            Self.sessionDuration: [1, 10, 60, 300, 900, 1800, 3600, 7200, 14_400, 28_800].map { Duration.seconds($0) },
            // TCP + TLS + the API server's authorization + the websocket upgrade, up to the 10 s deadline.
            Self.upstreamHandshake: [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]
                .map { Duration.microseconds(Int64($0 * 1000)) },
        ]
        self.init(factory: factory, registry: registry)
    }

    /// Metrics reported to an app's own backend; the proxy then serves no `/metrics`.
    init(factory: any MetricsFactory, registry: PrometheusCollectorRegistry? = nil) {
        self.factory = factory
        self.registry = registry
        self.activeSessions = Meter(label: Self.sessionsActive, factory: factory)
        self.bytesToVM = CoreMetrics.Counter(label: Self.bytesTotal, dimensions: [("direction", "to_vm")], factory: factory)
        self.bytesToClient = CoreMetrics.Counter(label: Self.bytesTotal, dimensions: [("direction", "to_client")], factory: factory)
        self.sessionDurations = CoreMetrics.Timer(label: Self.sessionDuration, factory: factory)
        self.upstreamHandshakes = CoreMetrics.Timer(label: Self.upstreamHandshake, factory: factory)
        // Made now so the series exists (at 0) before the first session: rate() needs a starting point.
        _ = CoreMetrics.Counter(label: Self.sessionsTotal, dimensions: [("outcome", Self.sessionOpened)], factory: factory)
    }

    /// Counts one request by how it ended: `ok`, or the error code it was refused with.
    /// The codes are a fixed set (ProxyError's), so the label's cardinality is bounded.
    func countRequest(outcome: String) {
        CoreMetrics.Counter(label: Self.sessionsTotal, dimensions: [("outcome", outcome)], factory: self.factory).increment()
    }
}
