import Foundation
import KubeVirtSimulator
import NIOCore
import NIOWebSocket
import Testing
@testable import VNCProxy
import WebSocketSupport

@Suite("Session policies: origins, caps, rates, keepalive and time limits")
struct PolicyTests {
    static func upgradeStatus(_ harness: ProxyHarness, path: String, headers: [String] = []) async throws -> RawHTTP.Response {
        try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: path, extraHeaders: headers))
    }

    @Test("Origins outside the allow-list get 403; listed origins, wildcards and native clients pass")
    func origins() async throws {
        try await ProxyHarness.with(adjust: { $0.allowedOrigins = ["https://lab.example.org", "*.example.net"] }) { harness in
            let path = "/\(try harness.token())/vm1"
            let evil = try await Self.upgradeStatus(harness, path: path, headers: ["Origin: https://evil.example.com"])
            #expect(evil.status == 403)
            #expect(evil.errorCode == "origin_not_allowed")
            let suffixTrick = try await Self.upgradeStatus(harness, path: path, headers: ["Origin: https://example.net"])
            #expect(suffixTrick.status == 403)
            for origin in ["https://lab.example.org", "https://a.example.net", "HTTPS://LAB.EXAMPLE.ORG"] {
                #expect(try await Self.upgradeStatus(harness, path: path, headers: ["Origin: \(origin)"]).status == 101, "\(origin)")
            }
            #expect(try await Self.upgradeStatus(harness, path: path).status == 101, "no Origin: curl or a native viewer")
        }
        try await ProxyHarness.with(adjust: { $0.allowedOrigins = ["https://lab.example.org"]; $0.requireOrigin = true }) { harness in
            let response = try await Self.upgradeStatus(harness, path: "/\(try harness.token())/vm1")
            #expect(response.status == 403)
        }
    }

    @Test("A VM at its session cap refuses the next viewer with 429 until one leaves")
    func perVMCap() async throws {
        try await ProxyHarness.with(adjust: { $0.maxSessionsPerVM = 1 }) { harness in
            let token = try harness.token()
            try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/echo") { session in
                try await session.send([1])
                _ = try await session.read(count: 1)
                let second = try await Self.upgradeStatus(harness, path: "/\(token)/echo")
                #expect(second.status == 429)
                #expect(second.errorCode == "too_many_sessions_for_vm")
                let otherVM = try await Self.upgradeStatus(harness, path: "/\(token)/vm1")
                #expect(otherVM.status == 101, "the cap is per VM")
            }
            // The place is given back once both legs of the first session have closed.
            var status: Int?
            for _ in 0..<50 where status != 101 {
                status = try await Self.upgradeStatus(harness, path: "/\(token)/echo").status
                if status != 101 { try await Task.sleep(nanoseconds: 50_000_000) }
            }
            #expect(status == 101)
        }
    }

    @Test("A user at the per-subject cap gets 429; the total cap counts everyone")
    func subjectAndTotalCaps() async throws {
        try await ProxyHarness.with(adjust: { $0.maxSessionsPerSubject = 1 }) { harness in
            let token = try harness.token()
            try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/echo") { session in
                try await session.send([1])
                _ = try await session.read(count: 1)
                let second = try await Self.upgradeStatus(harness, path: "/\(token)/vm1")
                #expect(second.errorCode == "too_many_sessions_for_user")
            }
        }
        try await ProxyHarness.with(adjust: { $0.maxSessions = 0 }) { harness in
            let response = try await Self.upgradeStatus(harness, path: "/\(try harness.token())/vm1")
            #expect(response.status == 429)
            #expect(response.errorCode == "too_many_sessions")
        }
    }

    @Test("Requests beyond the per-client rate get 429")
    func rateLimit() async throws {
        try await ProxyHarness.with(adjust: { $0.maxRequestsPerSecondPerClient = 2 }) { harness in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<10 {
                    group.addTask { try await Self.upgradeStatus(harness, path: "/nope.nope.nope/vm1").status ?? 0 }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.contains(429))
            #expect(statuses.filter { $0 == 401 }.count < 10)
            #expect(Set(statuses).isSubset(of: [401, 429]))
        }
    }

    @Test("The rate limiter's bucket: a burst of `rate`, then one more per 1/rate seconds, per client")
    func rateLimiterBucket() {
        let limiter = RequestRateLimiter(requestsPerSecond: 2)
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
        #expect(limiter.allow(client: "a", now: start))
        #expect(limiter.allow(client: "a", now: start))
        #expect(!limiter.allow(client: "a", now: start))
        #expect(limiter.allow(client: "b", now: start), "another client has its own bucket")
        #expect(!limiter.allow(client: "a", now: start + .milliseconds(400)))
        #expect(limiter.allow(client: "a", now: start + .milliseconds(500)))
    }

    @Test("A viewer that stops answering pings is disconnected; one that answers stays")
    func keepalive() async throws {
        // Wide intervals: when the whole suite starts, dozens of harnesses generate certificates at once on
        // 2 cores, and a viewer's task can wait seconds to be scheduled; that is not what is tested here.
        try await ProxyHarness.with(adjust: { $0.pingInterval = .seconds(5) }) { harness in
            let token = try harness.token()
            // Reading answers pings: this session survives several intervals.
            try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/echo") { session in
                for round in 0..<45 {
                    try await session.send([UInt8(round)])
                    do {
                        #expect(try await session.read(count: 1) == [UInt8(round)])
                    } catch {
                        Issue.record("closed in round \(round): \(session.closeReason ?? "no reason")")
                        throw error
                    }
                    try await Task.sleep(nanoseconds: 250_000_000)
                }
            }
            // Not reading leaves the proxy's ping unanswered: the proxy ends the session and, after the
            // close deadline, drops the connection (the client may then see a reset instead of the close).
            let code = try await WebSocketClient.withConnection(
                host: "127.0.0.1", port: harness.port, path: "/\(token)/echo"
            ) { session in
                try await Task.sleep(nanoseconds: 12_000_000_000)
                return try? await session.readUntilClose()
            }
            #expect(code == nil || code == .goingAway)
            #expect(await harness.eventually {
                harness.logs.all.contains { $0.contains("session ended") && $0.contains("reason=client did not answer ping") }
            })
        }
    }

    @Test("Idle sessions, long sessions and expired tokens end with their close codes")
    func timeLimits() async throws {
        try await ProxyHarness.with(adjust: { $0.idleTimeout = .milliseconds(300); $0.pingInterval = nil }) { harness in
            let ended = try await Self.closeOf(harness, vm: "echo", token: try harness.token())
            #expect(ended.code == .goingAway)
            #expect(ended.reason == "idle timeout")
        }
        try await ProxyHarness.with(adjust: { $0.maxSessionDuration = .milliseconds(300) }) { harness in
            let ended = try await Self.closeOf(harness, vm: "echo", token: try harness.token())
            #expect(ended.code == .policyViolation)
            #expect(ended.reason == "session time limit reached")
        }
        try await ProxyHarness.with(adjust: { $0.enforceTokenExpiry = true }) { harness in
            let ended = try await Self.closeOf(harness, vm: "echo", token: try harness.token(lifetime: 1))
            #expect(ended.code == .policyViolation)
            #expect(ended.reason == "token expired")
        }
    }

    static func closeOf(_ harness: ProxyHarness, vm: String, token: String) async throws -> (code: WebSocketErrorCode?, reason: String?) {
        try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/\(vm)") { session in
            let code = try await session.readUntilClose()
            return (code, session.closeReason)
        }
    }

    @Test("X-Forwarded-For is believed only from trusted proxies")
    func forwardedFor() async throws {
        try await ProxyHarness.with(adjust: { $0.trustedProxies = ["127.0.0.1"] }) { harness in
            _ = try await Self.upgradeStatus(harness, path: "/x.y.z/vm1", headers: ["X-Forwarded-For: 198.51.100.7, 203.0.113.9"])
            #expect(harness.logs.all.contains { $0.contains("client=203.0.113.9") })
        }
        try await ProxyHarness.with { harness in
            _ = try await Self.upgradeStatus(harness, path: "/x.y.z/vm1", headers: ["X-Forwarded-For: 203.0.113.9"])
            #expect(harness.logs.all.contains { $0.contains("client=127.0.0.1") })
            #expect(!harness.logs.all.contains { $0.contains("203.0.113.9") })
        }
    }
}

@Suite("Tokens outside the URL")
struct TokenSourceTests {
    static func bearerProtocol(_ token: String) -> String {
        "base64url.bearer.authorization.k8s.io." + RejectionTests.b64url(Data(token.utf8))
    }

    @Test("The Kubernetes bearer subprotocol carries the token; it is never echoed, nor logged")
    func subprotocolToken() async throws {
        try await ProxyHarness.with(adjust: { $0.hostPathPrefix = "console" }) { harness in
            let token = try harness.token()
            let chosen = try await WebSocketClient.withConnection(
                host: "127.0.0.1", port: harness.port, path: "/console/vm1",
                subprotocols: ["binary", Self.bearerProtocol(token)]
            ) { session in
                let width = try await RFBProbe.run(on: session).width
                return (width, session.subprotocol)
            }.1
            #expect(chosen == "binary")
            let alone = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(
                path: "/console/vm1", extraHeaders: ["Sec-WebSocket-Protocol: \(Self.bearerProtocol(token))"]))
            #expect(alone.status == 101)
            #expect(!alone.raw.lowercased().contains("sec-websocket-protocol"), "the token protocol is never echoed")
            let signature = String(token.split(separator: ".")[2])
            #expect(!harness.logs.all.contains { $0.contains(signature) })
        }
    }

    @Test("Token refusals through the subprotocol", arguments: [
        ("no token at all", [String](), 401, "token_missing"),
        ("not base64", ["base64url.bearer.authorization.k8s.io.!!!"], 401, "token_malformed"),
        ("two bearer protocols", ["base64url.bearer.authorization.k8s.io.YQ", "base64url.bearer.authorization.k8s.io.Yg"], 401, "token_malformed"),
    ])
    func subprotocolRefusals(name: String, protocols: [String], status: Int, error: String) async throws {
        try await ProxyHarness.with { harness in
            let headers = protocols.isEmpty ? [] : ["Sec-WebSocket-Protocol: \(protocols.joined(separator: ", "))"]
            let response = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/vm1", extraHeaders: headers))
            #expect(response.status == status, "\(name)")
            #expect(response.errorCode == error, "\(name)")
        }
    }

    @Test("A token in both the path and the subprotocol is refused as ambiguous")
    func ambiguous() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            let response = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(
                path: "/\(token)/vm1", extraHeaders: ["Sec-WebSocket-Protocol: binary, \(Self.bearerProtocol(token))"]))
            #expect(response.status == 400)
            #expect(response.errorCode == "token_ambiguous")
        }
    }

    @Test("X-Auth-Request-Token is used only when enabled and from a trusted proxy")
    func authHeader() async throws {
        try await ProxyHarness.with(adjust: { $0.trustedProxies = ["127.0.0.1"]; $0.trustAuthRequestHeader = true }) { harness in
            let response = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(
                path: "/vm1", extraHeaders: ["X-Auth-Request-Token: \(try harness.token())"]))
            #expect(response.status == 101)
        }
        try await ProxyHarness.with { harness in
            let response = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(
                path: "/vm1", extraHeaders: ["X-Auth-Request-Token: \(try harness.token())"]))
            #expect(response.status == 401)
            #expect(response.errorCode == "token_missing")
        }
    }
}
