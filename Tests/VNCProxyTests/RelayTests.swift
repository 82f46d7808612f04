import Foundation
import KubeVirtSimulator
import NIOCore
import NIOWebSocket
import Testing
import VNCProxy
import WebSocketSupport

@Suite("Relay through the proxy to the TLS simulator")
struct RelayTests {
    @Test("RFB handshake and a framebuffer update cross the proxy", arguments: ["v1", "v1alpha3"])
    func rfbHandshake(apiVersion: String) async throws {
        try await ProxyHarness.with(adjust: {
            $0.apiPathTemplate = WebsocketProxy.Configuration.defaultAPIPathTemplate
                .replacingOccurrences(of: "/v1/", with: "/\(apiVersion)/")
        }) { harness in
            let token = try harness.token()
            let result = try await WebSocketClient.withConnection(
                host: "127.0.0.1", port: harness.port, path: "/\(token)/vm1"
            ) { session in
                try await RFBProbe.run(on: session, row: 10, columns: 640)
            }
            #expect(result.width == 640 && result.height == 480)
            #expect(result.name == "kubevirt-simulator")
            #expect(result.pixels.first == [255, 255, 255], "first bar is white")
            #expect(result.pixels.last == [0, 0, 0], "last bar is black")
            #expect(result.pixels[80 * 5 + 1] == [255, 0, 0], "sixth bar is red")
            let upstream = try #require(harness.simulator.requests.last)
            #expect(upstream.uri == "/apis/subresources.kubevirt.io/\(apiVersion)/namespaces/lab-ns/virtualmachineinstances/vm1/vnc")
            #expect(upstream.authorization == "Bearer sa-token-1")
            #expect(upstream.subprotocols == ["plain.kubevirt.io"])
        }
    }

    @Test("A multi-segment path prefix routes like the original's host_path_prefix")
    func pathPrefix() async throws {
        try await ProxyHarness.with(adjust: { $0.hostPathPrefix = "/ws_proxy/console/" }) { harness in
            let token = try harness.token()
            let result = try await WebSocketClient.withConnection(
                host: "127.0.0.1", port: harness.port, path: "/ws_proxy/console/\(token)/vm1"
            ) { try await RFBProbe.run(on: $0) }
            #expect(result.width == 640)
            let withoutPrefix = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(token)/vm1"))
            #expect(withoutPrefix.status == 404)
        }
    }

    @Test("The subprotocol echoed is one the viewer offered and we support, or none",
          arguments: [([String](), nil as String?), (["binary"], "binary"), (["fantasy", "plain.kubevirt.io"], "plain.kubevirt.io"),
                      (["fantasy"], nil)])
    func subprotocolNegotiation(offered: [String], expected: String?) async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            let chosen = try await WebSocketClient.withConnection(
                host: "127.0.0.1", port: harness.port, path: "/\(token)/vm1", subprotocols: offered
            ) { session in
                _ = try await session.read(count: 12)
                return session.subprotocol
            }
            #expect(chosen == expected)
        }
    }

    @Test("Text frames toward the VM become binary; fragments are relayed as a byte stream")
    func textAndFragments() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/echo") { session in
                try await session.send(frame: .outgoing(.text, data: ByteBuffer(string: "hello"), role: .client))
                let echoed = try #require(try await session.nextFrame())
                #expect(echoed.opcode == .binary)
                #expect(String(buffer: echoed.unmaskedData) == "hello")

                // One message in three fragments arrives as the same bytes.
                let parts = ["frag", "ment", "ed"]
                for (index, part) in parts.enumerated() {
                    let opcode: WebSocketOpcode = index == 0 ? .binary : .continuation
                    try await session.send(frame: WebSocketFrame(
                        fin: index == parts.count - 1, opcode: opcode, maskKey: .random(), data: ByteBuffer(string: part)))
                }
                #expect(try await session.read(count: 10) == Array("fragmented".utf8))
            }
        }
    }

    @Test("10 MiB arrive intact in both directions")
    func largeTransfer() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            var generator = SeededGenerator(seed: 0x5eed)
            let chunk = 64 * 1024
            let total = 10 * 1024 * 1024
            var sentDigest = Hasher64(), receivedDigest = Hasher64()
            try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/echo") { session in
                var sent = 0
                while sent < total {
                    let bytes = (0..<chunk).map { _ in UInt8.random(in: 0...255, using: &generator) }
                    sentDigest.add(bytes)
                    try await session.send(bytes)
                    receivedDigest.add(try await session.read(count: chunk))
                    sent += chunk
                }
            }
            #expect(sentDigest.value == receivedDigest.value)
            #expect(await harness.eventually { harness.logs.all.contains { $0.contains("session ended") } })
            let ended = harness.logs.all.first { $0.contains("session ended") && $0.contains("vm=echo") }
            #expect(ended?.contains("bytes_to_vm=\(total)") == true)
            #expect(ended?.contains("bytes_to_client=\(total)") == true)
        }
    }

    @Test("A frame larger than maxFrameSize closes the session with 1009")
    func oversizedFrame() async throws {
        try await ProxyHarness.with(adjust: { $0.maxFrameSize = 64 * 1024 }) { harness in
            let token = try harness.token()
            let code = try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/echo") { session in
                try await session.send([UInt8](repeating: 7, count: 64 * 1024 + 1))
                return try await session.readUntilClose()
            }
            #expect(code == .messageTooLarge)
        }
    }

    @Test("The viewer's close code reaches the VM and is echoed back")
    func closeCodePropagates() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            let code = try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/vm1") { session in
                _ = try await session.read(count: 12)
                try await session.close(code: .unknown(4000), reason: "bye")
                return try await session.readUntilClose()
            }
            #expect(code.map { UInt16(webSocketErrorCode: $0) } == 4000)
            #expect(await harness.eventually { harness.simulator.activeSessionCount == 0 && harness.proxy.openConnectionCount == 0 })
            // The end line follows both legs closing, a moment after the connection count drops.
            #expect(await harness.eventually {
                harness.logs.all.contains { $0.contains("session ended") && $0.contains("client closed with 4000") }
            })
        }
    }

    @Test("A second viewer displaces the first, which gets 1001 from the proxy")
    func displacedSession() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            let first = try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/vm1") { first in
                _ = try await first.read(count: 12)
                try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/vm1") { second in
                    let greeting = try await second.read(count: 12)
                    #expect(greeting == Array("RFB 003.008\n".utf8))
                }
                return (try await first.readUntilClose(), first.closeReason)
            }
            #expect(first.0 == .goingAway)
            #expect(first.1 == "VM console connection closed")
        }
    }

    @Test("A viewer that vanishes mid-stream leaves no session or connection behind")
    func abruptDisconnect() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            for _ in 0..<5 {
                try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/echo") { session in
                    try await session.send([UInt8](repeating: 1, count: 200_000))
                    _ = try await session.read(count: 1000)
                    // Leaving the closure drops TCP without a close frame.
                }
            }
            #expect(await harness.eventually {
                harness.proxy.activeSessionCount == 0 && harness.proxy.openConnectionCount == 0
                    && harness.simulator.activeSessionCount == 0
            })
        }
    }

    @Test("Session logs have one start and one end line and never the token")
    func logHygiene() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            _ = try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/vm1") {
                try await RFBProbe.run(on: $0)
            }
            _ = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(token)x/vm1"))
            _ = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(token)/not-allowed"))
            _ = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(token)"))
            #expect(await harness.eventually { harness.logs.all.contains { $0.contains("session ended") } })
            let lines = harness.logs.all
            #expect(lines.filter { $0.contains("session started") }.count == 1)
            #expect(lines.filter { $0.contains("session ended") }.count == 1)
            let signature = String(token.split(separator: ".")[2])
            let payload = String(token.split(separator: ".")[1])
            #expect(!lines.contains { $0.contains(signature) || $0.contains(payload) })
            #expect(lines.filter { $0.contains("request refused") }.count == 3)
        }
    }
}

/// A small deterministic generator, so a failing transfer can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { self.state = seed }
    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// FNV-1a over a stream of chunks: order-sensitive, cheap, enough to catch a lost or swapped byte.
struct Hasher64 {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ bytes: [UInt8]) {
        for byte in bytes {
            self.value = (self.value ^ UInt64(byte)) &* 0x100_0000_01b3
        }
    }
}
