import Foundation
import Testing
@testable import VNCProxy

@Suite("Path routing, names and redaction")
struct RoutingTests {
    @Test("Routes split into token and VM under the prefix")
    func parse() throws {
        #expect(try ProxyRoute.parse(uri: "/a.b.c/vm1", prefix: []) == ProxyRoute(token: "a.b.c", vmName: "vm1"))
        #expect(try ProxyRoute.parse(uri: "/p/q/a.b.c/vm1?x=1", prefix: ["p", "q"]) == ProxyRoute(token: "a.b.c", vmName: "vm1"))
        #expect(try ProxyRoute.parse(uri: "/q/p/a.b.c/vm1", prefix: ["p", "q"]) == nil)
        #expect(try ProxyRoute.parse(uri: "a.b.c/vm1", prefix: []) == nil)
        #expect(try ProxyRoute.parse(uri: "/a.b.c/vm1/", prefix: []) == nil)
        #expect(throws: ProxyError.self) { try ProxyRoute.parse(uri: "/a.b.c/%2e%2e", prefix: []) }
        #expect(throws: ProxyError.self) { try ProxyRoute.parse(uri: "/a b/vm1", prefix: []) }
        #expect(ProxyRoute.segments(ofPrefix: "/ws_proxy/x/") == ["ws_proxy", "x"])
    }

    @Test("RFC 1123 labels", arguments: [
        ("vm1", true), ("a", true), ("a-b-c", true), (String(repeating: "a", count: 63), true),
        ("", false), ("-a", false), ("a-", false), ("A", false), ("a.b", false), ("..", false), ("a_b", false),
        ("a%2F", false), (String(repeating: "a", count: 64), false), ("vm\u{0}", false), ("vé", false),
    ])
    func labels(name: String, valid: Bool) {
        #expect(KubernetesName.isValidLabel(name) == valid)
    }

    @Test("Upstream URLs parse, including IPv6 and default ports")
    func endpoints() throws {
        #expect(try Self.fields("wss://10.96.0.1:443") == ("10.96.0.1", 443, true))
        #expect(try Self.fields("https://kubernetes.default.svc") == ("kubernetes.default.svc", 443, true))
        #expect(try Self.fields("ws://localhost:8001/") == ("localhost", 8001, false))
        #expect(try Self.fields("wss://[fd00::1]:6443") == ("fd00::1", 6443, true))
        #expect(try UpstreamEndpoint(url: "wss://[fd00::1]:6443").hostHeader == "[fd00::1]:6443")
        #expect(throws: ConfigurationError.self) { try UpstreamEndpoint(url: "wss://host/path") }
        #expect(throws: ConfigurationError.self) { try UpstreamEndpoint(url: "wss://user@host") }
        #expect(throws: ConfigurationError.self) { try UpstreamEndpoint(url: "wss://host:0") }
    }

    static func fields(_ url: String) throws -> (String, Int, Bool) {
        let endpoint = try UpstreamEndpoint(url: url)
        return (endpoint.host, endpoint.port, endpoint.useTLS)
    }

    @Test("Redacted paths never show a token, wherever it sits", arguments: [
        "/TOKEN.x.y/vm1", "/TOKEN.x.y", "/pre/TOKEN.x.y/vm1", "/TOKEN.x.y/vm1/extra", "/a/TOKEN.x.y", "/TOKEN.x.y?x=1",
    ])
    func redaction(uri: String) {
        let shown = RedactedPath(uri: uri, prefix: ["pre"]).description
        #expect(!shown.contains("TOKEN"), "\(shown)")
    }

    @Test("JSON error bodies escape what they quote")
    func errorBody() {
        let body = ProxyError(.notFound, "x", "a \"quoted\" \\ name\n\u{1}").body(allocator: .init())
        #expect(String(buffer: body) == #"{"error":"x","reason":"a \"quoted\" \\ name\n\u0001"}"# + "\n")
    }
}

/// The hand-written base64url codec against Foundation's base64 on every length and byte value.
@Suite struct Base64URLTests {
    @Test func roundTripsAndMatchesFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<200 {
            let data = Data((0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let encoded = Base64URL.encode(data)
            let foundation = data.base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(encoded == foundation)
            if length > 0 { #expect(Base64URL.decode(encoded) == data) }
        }
    }

    @Test func refusesWhatIsNotCanonicalBase64URL() {
        for text in ["", "A", "AB==", "A+B/", "AB C", "ab\u{0}c", "AB.C", "AAAAA", "AB", "AAB", "é"] {
            let decoded = Base64URL.decode(text)
            switch text {
            case "AB": #expect(decoded == nil, "non-zero unused bits")  // 'B' leaves bits set
            case "AAB": #expect(decoded == nil, "non-zero unused bits")
            default: #expect(decoded == nil, "\(text)")
            }
        }
        #expect(Base64URL.decode("AA") == Data([0]))
        #expect(Base64URL.decode("AAA") == Data([0, 0]))
        #expect(Base64URL.decode("-_8") == Data([0xfb, 0xff]))
    }
}
