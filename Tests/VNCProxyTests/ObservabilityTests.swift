import Foundation
import NIOConcurrencyHelpers
import Testing
import VNCProxy
import WebSocketSupport

/// `/metrics`, the admin port, readiness and the drain window, over real sockets.
@Suite("Metrics, admin port, readiness and drain")
struct ObservabilityTests {
    /// The value of one Prometheus sample line such as `vnc_proxy_sessions_total{outcome="ok"}`.
    static func sample(_ name: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1))
        }
        return nil
    }

    static func get(_ path: String, port: Int) async throws -> RawHTTP.Response {
        try await RawHTTP.exchange(port: port, "GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
    }

    @Test("/metrics counts sessions by outcome, bytes each way, durations and upstream handshakes")
    func metricsCountWhatHappened() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            let payload = (0..<50_000).map { UInt8(truncatingIfNeeded: $0) }
            try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/echo") { session in
                try await session.send(payload)
                #expect(try await session.read(count: payload.count) == payload)
                let during = try await Self.get("/metrics", port: harness.port)
                #expect(Self.sample("vnc_proxy_sessions_active", in: during.body) == 1)
                try await session.close()
                _ = try await session.readUntilClose()
            }
            let refused = try await RawHTTP.exchange(
                port: harness.port, RawHTTP.upgradeRequest(path: "/\(try harness.token(secret: "other"))/echo"))
            #expect(refused.status == 401)
            let notAllowed = try await RawHTTP.exchange(
                port: harness.port, RawHTTP.upgradeRequest(path: "/\(try harness.token(vms: ["vm1"]))/echo"))
            #expect(notAllowed.status == 403)

            // The session's end is recorded once both legs have closed, a moment after the client's close.
            var text = ""
            let settled = await harness.eventually {
                text = (try? await Self.get("/metrics", port: harness.port).body) ?? ""
                return Self.sample("vnc_proxy_sessions_active", in: text) == 0
                    && Self.sample("vnc_proxy_session_duration_seconds_count", in: text) == 1
            }
            #expect(settled, "\(text)")
            let metrics = try await Self.get("/metrics", port: harness.port)
            #expect(metrics.status == 200)
            #expect(metrics.raw.lowercased().contains("content-type: text/plain; version=0.0.4"))
            text = metrics.body
            #expect(Self.sample(#"vnc_proxy_sessions_total{outcome="ok"}"#, in: text) == 1)
            #expect(Self.sample(#"vnc_proxy_sessions_total{outcome="token_invalid"}"#, in: text) == 1)
            #expect(Self.sample(#"vnc_proxy_sessions_total{outcome="vm_not_allowed"}"#, in: text) == 1)
            #expect(Self.sample(#"vnc_proxy_bytes_total{direction="to_vm"}"#, in: text) == Double(payload.count))
            #expect(Self.sample(#"vnc_proxy_bytes_total{direction="to_client"}"#, in: text) == Double(payload.count))
            #expect(Self.sample("vnc_proxy_upstream_handshake_seconds_count", in: text) == 1)
            #expect(!text.contains(token), "no token in metrics")
        }
    }

    @Test("With an admin port, probes and /metrics live there and /metrics leaves the main port")
    func adminPort() async throws {
        try await ProxyHarness.with(adjust: { $0.adminPort = 0 }) { harness in
            let adminPort = try #require(harness.proxy.adminAddress?.port)
            #expect(adminPort != harness.port)
            let metrics = try await Self.get("/metrics", port: adminPort)
            #expect(metrics.status == 200)
            #expect(metrics.body.contains("# TYPE vnc_proxy_sessions_total counter"))
            #expect(try await Self.get("/healthz", port: adminPort).status == 200)
            #expect(try await Self.get("/readyz", port: adminPort).status == 200)
            let unknown = try await Self.get("/anything/else", port: adminPort)
            #expect(unknown.status == 404 && unknown.errorCode == "not_found")
            let upgrade = try await RawHTTP.exchange(port: adminPort, RawHTTP.upgradeRequest(path: "/\(try harness.token())/vm1"))
            #expect(upgrade.status == 404, "the admin port opens no sessions")
            let onMain = try await Self.get("/metrics", port: harness.port)
            #expect(onMain.status != 200 && !onMain.body.contains("vnc_proxy_"))
        }
    }

    @Test("/readyz is 503 while the service-account token file cannot be read, 200 again once it can")
    func readinessFollowsTheTokenFile() async throws {
        try await ProxyHarness.with { harness in
            try FileManager.default.moveItem(atPath: harness.tokenFile, toPath: harness.tokenFile + ".away")
            let missing = try await Self.get("/readyz", port: harness.port)
            #expect(missing.status == 503)
            #expect(missing.body.contains("not_ready") && missing.body.contains("token"), "\(missing.body)")
            #expect(try await Self.get("/healthz", port: harness.port).status == 200, "liveness does not depend on it")
            try FileManager.default.moveItem(atPath: harness.tokenFile + ".away", toPath: harness.tokenFile)
            #expect(try await Self.get("/readyz", port: harness.port).status == 200)
        }
    }

    @Test("On stop, readiness goes false and new upgrades get 503 before the listener closes; sessions then get 1001")
    func drainWindow() async throws {
        try await ProxyHarness.with(adjust: { $0.shutdownDelay = .seconds(5) }) { harness in
            let token = try harness.token()
            try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/echo") { session in
                try await session.send([1, 2, 3])
                #expect(try await session.read(count: 3) == [1, 2, 3])
                let stopped = NIOLockedValueBox(false)
                Thread {
                    harness.proxy.stop()
                    stopped.withLockedValue { $0 = true }
                }.start()
                let draining = await harness.eventually(within: 3) {
                    (try? await Self.get("/readyz", port: harness.port).status) == 503
                }
                #expect(draining, "readiness false during the shutdown delay")
                let refused = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(token)/vm1"))
                #expect(refused.status == 503 && refused.errorCode == "draining", "\(refused.raw)")
                #expect(!stopped.withLockedValue { $0 })
                // The open session still relays during the delay, then is closed with 1001.
                try await session.send([4])
                #expect(try await session.read(count: 1) == [4])
                #expect(try await session.readUntilClose() == .goingAway)
            }
        }
    }
}

