import Crypto
import Foundation
import NIOCore
import NIOWebSocket
import Testing
import WebSocketSupport

/// Requests and frames an attacker would send. Every request must get a 4xx before any upstream
/// contact, the proxy must stay up, and a valid session right after must still work.
@Suite("Hostile input")
struct HostileInputTests {
    /// Request paths that are wrong in one way each.
    static func hostilePaths(validToken: String) -> [String] {
        let parts = validToken.split(separator: ".").map(String.init)
        let b64 = { (text: String) in RejectionTests.b64url(Data(text.utf8)) }
        let signed = { (header: String, payload: String) -> String in
            RejectionTests.forged(header: header, payload: payload, signature: { RejectionTests.hmac($0) })
        }
        let deepArray = String(repeating: "[", count: 3000) + String(repeating: "]", count: 3000)
        let deepObject = String(repeating: #"{"a":"#, count: 1500) + "1" + String(repeating: "}", count: 1500)
        return [
            "/", "//", "///", "/\(validToken)", "/\(validToken)/", "/\(validToken)//", "//\(validToken)/vm1",
            "/\(validToken)/vm1/extra", "/x/\(validToken)/vm1", "/\(validToken)/%2e%2e", "/\(validToken)/..",
            "/\(validToken)/.", "/\(validToken)/vm1%2F..", "/\(validToken)/vm1%00", "/\(validToken)/vm%31",
            "/\(validToken)/VM1", "/\(validToken)/vm_1", "/\(validToken)/-vm1", "/\(validToken)/vm1-",
            "/\(validToken)/" + String(repeating: "a", count: 64), "/\(validToken)/vé", "/\(validToken)/vm1%3Fx=/../",
            "/\(validToken)/" + String(repeating: "v", count: 10_000), "/" + String(repeating: "A", count: 10_000) + "/vm1",
            "/%2e%2e/vm1", "/a%2Fb/vm1", "/tök.en.x/vm1", "/a.b/vm1", "/a.b.c.d/vm1", "/.../vm1", "/..\(validToken)/vm1",
            "/!!!.???.***/vm1", "/\(parts[0])..\(parts[2])/vm1", "/\(parts[0]).\(parts[1])./vm1",
            "/\(parts[0]).\(parts[1]).\(parts[2].dropLast())/vm1", "/\(parts[0]).\(parts[1]).\(parts[2])x/vm1",
            "/\(parts[0]).\(b64("{}")).\(parts[2])/vm1",
            "/" + signed(#"{"alg":"none"}"#, #"{"exp":4102444800}"#) + "/vm1",
            "/" + b64(#"{"alg":"none","typ":"JWT"}"#) + "." + parts[1] + "./vm1",
            "/" + signed(#"{"alg":"HS512"}"#, RejectionTests.validPayload) + "/vm1",
            "/" + signed(#"{"alg":"RS256"}"#, RejectionTests.validPayload) + "/vm1",
            "/" + signed(#"{"alg":"ES256"}"#, RejectionTests.validPayload) + "/vm1",
            "/" + signed(#"{"alg":"hs256"}"#, RejectionTests.validPayload) + "/vm1",
            "/" + signed(#"{"alg":"HS256","crit":["exp"]}"#, RejectionTests.validPayload) + "/vm1",
            "/" + signed(#"{"alg":"HS256"}"#, #"{"id":1,"lab_instance":{"lab_id":1,"lab_instance_id":1,"namespace_name":"lab-ns","allowed_vmi_names":["vm1"]}}"#) + "/vm1",
            "/" + signed(#"{"alg":"HS256"}"#, RejectionTests.validPayload.replacingOccurrences(of: "4102444800", with: #""4102444800""#)) + "/vm1",
            "/" + signed(#"{"alg":"HS256"}"#, RejectionTests.validPayload.replacingOccurrences(of: "4102444800", with: "1e999")) + "/vm1",
            "/" + signed(#"{"alg":"HS256"}"#, RejectionTests.validPayload.replacingOccurrences(of: "4102444800", with: "null")) + "/vm1",
            "/" + signed(#"{"alg":"HS256"}"#, RejectionTests.validPayload.replacingOccurrences(of: #""lab-ns""#, with: #""../kube-system""#)) + "/vm1",
            "/" + signed(#"{"alg":"HS256"}"#, RejectionTests.validPayload.replacingOccurrences(of: #"["vm1"]"#, with: #"["vm2"]"#)) + "/vm1",
            "/" + signed(#"{"alg":"HS256"}"#, RejectionTests.validPayload.replacingOccurrences(of: #"["vm1"]"#, with: "[" + (0..<2000).map { "\"v\($0)\"" }.joined(separator: ",") + "]")) + "/vm1",
            "/" + signed(#"{"alg":"HS256"}"#, deepArray) + "/vm1",
            "/" + signed(#"{"alg":"HS256"}"#, deepObject) + "/vm1",
            "/" + signed(deepArray, RejectionTests.validPayload) + "/vm1",
            "/" + signed(#"{"alg":"HS256"}"#, "not json") + "/vm1",
            "/" + signed("not json", RejectionTests.validPayload) + "/vm1",
        ]
    }

    /// Ways to break the upgrade itself, each applied to a valid path.
    static let hostileHeaderSets: [[String]] = [
        ["Host: x"],
        ["Host: x", "Upgrade: websocket"],
        ["Host: x", "Connection: Upgrade"],
        ["Host: x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"],
        ["Host: x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="],
        ["Host: x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==", "Sec-WebSocket-Version: 13"],
        ["Host: x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: short", "Sec-WebSocket-Version: 13"],
        ["Host: x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!!!", "Sec-WebSocket-Version: 13"],
        ["Host: x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 8"],
        ["Host: x", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13, 8"],
    ]

    @Test("Hostile request corpus: every case gets a 4xx, then a valid session still works")
    func corpus() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            var requests: [String] = []
            // Every hostile path as a proper upgrade, then every broken upgrade on a valid path and a bad one.
            for path in Self.hostilePaths(validToken: token) {
                requests.append(RawHTTP.upgradeRequest(path: path))
            }
            for headers in Self.hostileHeaderSets {
                for path in ["/\(token)/vm1", "/\(token)/vm2", "/", "/x.y.z/vm1"] {
                    requests.append((["GET \(path) HTTP/1.1"] + headers).joined(separator: "\r\n") + "\r\n\r\n")
                }
            }
            // Requests that are not HTTP, or too large to be one.
            let upgrade = RawHTTP.upgradeRequest(path: "/\(token)/vm1")
            requests += [
                "GARBAGE\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "\r\n\r\n", "GET / HTTP/1.1\r\nHost x\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: \u{0}\r\n\r\n", "GET /\u{0}/vm1 HTTP/1.1\r\nHost: x\r\n\r\n",
                "POST /\(token)/vm1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                "GET /\(token)/vm1 HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "b", count: 64 * 1024) + "\r\n\r\n",
                upgrade.replacingOccurrences(of: "\r\n\r\n", with: "\r\nContent-Length: 100000\r\n\r\n") + String(repeating: "x", count: 20_000),
            ]
            for index in 1...10 {
                requests.append(upgrade.replacingOccurrences(of: "Host: 127.0.0.1", with: "Host: 127.0.0.1\r\nX-Junk-\(index): \(String(repeating: "\u{7f}", count: index * 100))"))
            }
            for method in ["PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "HEAD"] {
                requests.append(upgrade.replacingOccurrences(of: "GET ", with: "\(method) "))
            }
            // The valid token with one character changed, at 60 places (never a segment's last character,
            // whose low bits base64 may ignore): each must fail its signature or its parsing.
            let characters = Array(token)
            let segmentEnds = Set(characters.indices.filter { $0 == characters.count - 1 || characters[$0 + 1] == "." })
            let positions = characters.indices.filter { characters[$0] != "." && !segmentEnds.contains($0) }
            for step in 0..<60 {
                var mutated = characters
                let position = positions[step * (positions.count - 1) / 59]
                mutated[position] = mutated[position] == "A" ? "B" : "A"
                requests.append(RawHTTP.upgradeRequest(path: "/\(String(mutated))/vm1"))
            }
            // Each path again with a bad Origin and two Origins: the checks must not crash on odd input either.
            for path in Self.hostilePaths(validToken: token).prefix(40) {
                requests.append(RawHTTP.upgradeRequest(path: path, extraHeaders: ["Origin: null", "Origin: https://a"]))
            }

            var statuses: [Int?] = []
            for batch in stride(from: 0, to: requests.count, by: 16) {
                let slice = requests[batch..<min(batch + 16, requests.count)]
                statuses += try await withThrowingTaskGroup(of: (Int, Int?).self) { group in
                    for (offset, request) in slice.enumerated() {
                        group.addTask { (offset, try await RawHTTP.exchange(port: harness.port, request).status) }
                    }
                    return try await group.reduce(into: [Int?](repeating: nil, count: slice.count)) { $0[$1.0] = $1.1 }
                }
            }
            let answered4xx = statuses.filter { ($0 ?? 0) >= 400 && ($0 ?? 0) < 500 }.count
            print("hostile corpus: \(requests.count) cases, \(answered4xx) answered 4xx")
            for (request, status) in zip(requests, statuses) where !(400..<500).contains(status ?? 0) {
                Issue.record("got \(status.map(String.init) ?? "no answer") for \(request.prefix(120).debugDescription)")
            }
            #expect(requests.count >= 200)
            #expect(answered4xx == requests.count)
            #expect(harness.simulator.requests.isEmpty, "no hostile request reached the Kubernetes API")
            let result = try await WebSocketClientProbe.rfb(port: harness.port, path: "/\(token)/vm1")
            #expect(result.width == 640)
        }
    }

    @Test("Frame abuse after the upgrade closes the session with the right code", arguments: [
        ("unmasked client frame", UInt16(1002)), ("reserved opcode", 1002), ("close with code 999", 1002),
        ("close with code 1005", 1002), ("close with a 1-byte payload", 1002), ("continuation without a message", 1002),
        ("new message inside a fragmented one", 1002), ("extension bit set", 1002),
    ])
    func frameAbuse(name: String, expected: UInt16) async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            let code = try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/echo") { session in
                try await session.send(frame: Self.abusiveFrame(name))
                if name == "new message inside a fragmented one" {
                    try await session.send(frame: WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: ByteBuffer(string: "b")))
                }
                return try await session.readUntilClose()
            }
            #expect(code.map { UInt16(webSocketErrorCode: $0) } == expected)
            #expect(await harness.eventually { harness.proxy.openConnectionCount == 0 && harness.simulator.activeSessionCount == 0 })
        }
    }

    static func abusiveFrame(_ name: String) -> WebSocketFrame {
        let data = ByteBuffer(string: "x")
        var closePayload = ByteBuffer()
        switch name {
        case "unmasked client frame":
            return WebSocketFrame(fin: true, opcode: .binary, data: data)
        case "reserved opcode":
            return WebSocketFrame(fin: true, opcode: WebSocketOpcode(encodedWebSocketOpcode: 3)!, maskKey: .random(), data: data)
        case "close with code 999":
            closePayload.writeInteger(UInt16(999))
            return WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: closePayload)
        case "close with code 1005":
            closePayload.writeInteger(UInt16(1005))
            return WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: closePayload)
        case "close with a 1-byte payload":
            return WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data)
        case "continuation without a message":
            return WebSocketFrame(fin: true, opcode: .continuation, maskKey: .random(), data: data)
        case "new message inside a fragmented one":
            return WebSocketFrame(fin: false, opcode: .binary, maskKey: .random(), data: data)
        default:
            return WebSocketFrame(fin: true, rsv1: true, opcode: .binary, maskKey: .random(), data: data)
        }
    }

    @Test("100,000 one-byte continuation fragments are relayed as a byte stream")
    func tinyFragments() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            let count = 100_000
            try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/echo") { session in
                var expected: [UInt8] = []
                for index in 0..<count {
                    let byte = UInt8(truncatingIfNeeded: index)
                    expected.append(byte)
                    try await session.send(frame: WebSocketFrame(
                        fin: index == count - 1, opcode: index == 0 ? .binary : .continuation, maskKey: .random(),
                        data: ByteBuffer(bytes: [byte])))
                    if index % 10_000 == 9_999 {
                        // Read what came back so far: the echo must not have to buffer it all.
                        #expect(try await session.read(count: 10_000) == Array(expected[(index - 9_999)...index]))
                    }
                }
            }
        }
    }

    @Test("A ping flood is answered without harm and the session keeps working")
    func pingFlood() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/echo") { session in
                for _ in 0..<10_000 {
                    try await session.send(frame: .outgoing(.ping, data: ByteBuffer(string: "p"), role: .client))
                }
                try await session.send(Array("still here".utf8))
                #expect(try await session.read(count: 10) == Array("still here".utf8))
            }
        }
    }
}
