import Crypto
import Foundation
import Testing
import VNCProxy

@Suite("Requests the proxy refuses, each with its status and JSON error")
struct RejectionTests {
    /// A token with a chosen header, signed (or not) by the caller: the forgeries an attacker would try.
    static func forged(header: String, payload: String, signature: (String) -> String) -> String {
        let input = b64url(Data(header.utf8)) + "." + b64url(Data(payload.utf8))
        return input + "." + signature(input)
    }

    static func b64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func hmac(_ input: String, secret: String = ProxyHarness.secret) -> String {
        b64url(Data(HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: Data(secret.utf8)))))
    }

    static let validPayload = #"{"id":1,"exp":4102444800,"lab_instance":{"lab_id":1,"lab_instance_id":1,"namespace_name":"lab-ns","allowed_vmi_names":["vm1"]}}"#

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var path: @Sendable (ProxyHarness) throws -> String
        var status: Int
        var error: String
        var testDescription: String { self.name }
    }

    static let cases: [Case] = [
        Case(name: "unknown route", path: { _ in "/" }, status: 404, error: "not_found"),
        Case(name: "too many segments", path: { "/x/\(try $0.token())/vm1" }, status: 404, error: "not_found"),
        Case(name: "token only, taken for a VM name", path: { "/\(try $0.token())" }, status: 400, error: "invalid_vm_name"),
        Case(name: "VM without any token", path: { _ in "/vm1" }, status: 401, error: "token_missing"),
        Case(name: "empty token segment", path: { _ in "//vm1" }, status: 401, error: "token_malformed"),
        Case(name: "garbage token", path: { _ in "/not-a-jwt/vm1" }, status: 401, error: "token_malformed"),
        Case(name: "percent in token", path: { _ in "/a%2Eb.c/vm1" }, status: 401, error: "token_malformed"),
        Case(name: "bad signature", path: { "/\(try $0.token(secret: "another-secret"))/vm1" }, status: 401, error: "token_invalid"),
        Case(name: "expired", path: { "/\(try $0.token(lifetime: -60))/vm1" }, status: 401, error: "token_expired"),
        Case(name: "VM not in token", path: { "/\(try $0.token(vms: ["vm2"]))/vm1" }, status: 403, error: "vm_not_allowed"),
        Case(name: "VM name with dot-dot", path: { "/\(try $0.token())/.." }, status: 400, error: "invalid_vm_name"),
        Case(name: "VM name with encoded slash", path: { "/\(try $0.token())/vm1%2F..%2Fsecrets" }, status: 400, error: "invalid_vm_name"),
        Case(name: "VM name upper case", path: { "/\(try $0.token())/VM1" }, status: 400, error: "invalid_vm_name"),
        Case(name: "namespace not a label", path: { "/\(try $0.token(namespace: "../kube-system"))/vm1" }, status: 400, error: "invalid_namespace"),
        Case(name: "alg none", path: { _ in
            "/" + forged(header: #"{"alg":"none","typ":"JWT"}"#, payload: validPayload, signature: { _ in "" }) + "/vm1"
        }, status: 401, error: "token_algorithm_not_allowed"),
        Case(name: "alg HS512", path: { _ in
            "/" + forged(header: #"{"alg":"HS512","typ":"JWT"}"#, payload: validPayload, signature: { hmac($0) }) + "/vm1"
        }, status: 401, error: "token_algorithm_not_allowed"),
        Case(name: "RS256 header signed with the HS secret as key", path: { _ in
            "/" + forged(header: #"{"alg":"RS256","typ":"JWT"}"#, payload: validPayload, signature: { hmac($0) }) + "/vm1"
        }, status: 401, error: "token_algorithm_not_allowed"),
        Case(name: "missing exp", path: { _ in
            "/" + forged(header: #"{"alg":"HS256"}"#, payload: #"{"id":1,"lab_instance":{"lab_id":1,"lab_instance_id":1,"namespace_name":"lab-ns","allowed_vmi_names":["vm1"]}}"#,
                         signature: { hmac($0) }) + "/vm1"
        }, status: 401, error: "token_claims_invalid"),
        Case(name: "exp as a string", path: { _ in
            "/" + forged(header: #"{"alg":"HS256"}"#, payload: validPayload.replacingOccurrences(of: "4102444800", with: "\"4102444800\""),
                         signature: { hmac($0) }) + "/vm1"
        }, status: 401, error: "token_claims_invalid"),
        Case(name: "nbf in the future", path: { _ in
            "/" + forged(header: #"{"alg":"HS256"}"#, payload: validPayload.replacingOccurrences(of: #""exp":4102444800"#, with: #""exp":4102444800,"nbf":4102444000"#),
                         signature: { hmac($0) }) + "/vm1"
        }, status: 401, error: "token_not_yet_valid"),
    ]

    @Test("Rejected upgrade", arguments: cases)
    func rejected(_ testCase: Case) async throws {
        try await ProxyHarness.with { harness in
            let response = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: try testCase.path(harness)))
            #expect(response.status == testCase.status, "\(response.raw)")
            #expect(response.errorCode == testCase.error, "\(response.body)")
            #expect(response.raw.lowercased().contains("content-type: application/json"))
            #expect(harness.simulator.requests.isEmpty, "nothing reached the Kubernetes API")
        }
    }

    @Test("Health and readiness probes answer plain GETs")
    func probes() async throws {
        try await ProxyHarness.with { harness in
            let live = try await RawHTTP.exchange(port: harness.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(live.status == 200)
            #expect(live.body == #"{"status":"ok"}"# + "\n")
            let ready = try await RawHTTP.exchange(port: harness.port, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(ready.status == 200)
        }
    }

    @Test("A plain GET on the proxy route asks for a websocket upgrade")
    func plainGet() async throws {
        try await ProxyHarness.with { harness in
            let response = try await RawHTTP.exchange(
                port: harness.port, "GET /\(try harness.token())/vm1 HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(response.status == 400)
            #expect(response.errorCode == "websocket_upgrade_required")
        }
    }

    @Test("Broken handshakes get 4xx", arguments: [
        ("Sec-WebSocket-Key: short", 400),
        ("Sec-WebSocket-Version: 8", 426),
    ])
    func brokenHandshake(header: String, status: Int) async throws {
        try await ProxyHarness.with { harness in
            var request = RawHTTP.upgradeRequest(path: "/\(try harness.token())/vm1")
            let name = String(header.prefix { $0 != ":" })
            request = request.split(separator: "\r\n", omittingEmptySubsequences: false)
                .map { $0.hasPrefix(name) ? Substring(header) : $0 }.joined(separator: "\r\n")
            let response = try await RawHTTP.exchange(port: harness.port, request)
            #expect(response.status == status, "\(response.raw)")
        }
    }

    @Test("Malformed HTTP gets 400 and the proxy keeps serving")
    func malformedHTTP() async throws {
        try await ProxyHarness.with { harness in
            let garbage = try await RawHTTP.exchange(port: harness.port, "\u{0}\u{1}NOT HTTP AT ALL\r\n\r\n")
            #expect(garbage.status == 400)
            let result = try await WebSocketClientProbe.rfb(port: harness.port, path: "/\(try harness.token())/vm1")
            #expect(result.width == 640)
        }
    }

    @Test("A client that never finishes its request is answered 408 at the deadline")
    func slowRequest() async throws {
        try await ProxyHarness.with(adjust: { $0.requestTimeout = .milliseconds(300) }) { harness in
            let response = try await RawHTTP.exchange(port: harness.port, "GET / HTTP/1.1\r\nHost: x\r\n")
            #expect(response.status == 408)
        }
    }
}
