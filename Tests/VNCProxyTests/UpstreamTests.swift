import NIOConcurrencyHelpers
import Foundation
import KubeVirtSimulator
import NIOCore
import NIOPosix
import Testing
import VNCProxy
import WebSocketSupport

@Suite("Upstream answers and failures, mapped to the client's answer")
struct UpstreamTests {
    @Test("VMI not found stays 404 with the Kubernetes message")
    func notFound() async throws {
        try await ProxyHarness.with { harness in
            let response = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(try harness.token())/missing"))
            #expect(response.status == 404)
            #expect(response.errorCode == "vmi_not_found")
            #expect(response.reason == #"virtualmachineinstance.kubevirt.io "missing" not found"#)
        }
    }

    @Test("VMI not running or without graphics is 409 with the Kubernetes message",
          arguments: [("stopped", "VMI is not running"), ("nographics", "No graphics devices are present.")])
    func unavailable(vm: String, message: String) async throws {
        try await ProxyHarness.with { harness in
            let response = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(try harness.token())/\(vm)"))
            #expect(response.status == 409)
            #expect(response.errorCode == "vmi_unavailable")
            #expect(response.reason == message)
        }
    }

    @Test("Our own credentials refused upstream (401) is a 502, logged as a credentials problem")
    func credentialsRejected() async throws {
        try await ProxyHarness.with { harness in
            // The proxy's token file no longer matches what the API server accepts.
            let proxyToken = harness.directory.appendingPathComponent("proxy-token").path
            try "stale-token".write(toFile: proxyToken, atomically: true, encoding: .utf8)
            let proxy = try WebsocketProxy(configuration: .init(
                remoteURL: harness.simulator.url, secretKey: ProxyHarness.secret, host: "127.0.0.1", port: 0,
                caFilePath: harness.caFile, tokenFilePath: proxyToken), logger: .init(label: "t") { _ in harness.logs.handler() })
            let port = try proxy.runInThread().port!
            defer { Thread { proxy.stop() }.start() }
            let response = try await RawHTTP.exchange(port: port, RawHTTP.upgradeRequest(path: "/\(try harness.token())/vm1"))
            #expect(response.status == 502)
            #expect(response.errorCode == "upstream_credentials_rejected")
            #expect(harness.simulator.requests.count == 2, "one retry with the token file read again")
            #expect(harness.logs.all.contains { $0.hasPrefix("error") && $0.contains("service-account credentials") })
            #expect(!harness.logs.all.contains { $0.contains("stale-token") })
        }
    }

    @Test("RBAC denied upstream (403) is a 502")
    func forbiddenNamespace() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token(vms: ["vm1"], namespace: "forbidden-ns")
            let response = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(token)/vm1"))
            #expect(response.status == 502)
            #expect(response.errorCode == "upstream_credentials_rejected")
        }
    }

    @Test("The bearer token file is re-read for every connection")
    func tokenRotation() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            _ = try await WebSocketClientProbe.rfb(port: harness.port, path: "/\(token)/vm1")
            // The kubelet swaps the projected token; the simulator reads the same file, so only the new one is accepted.
            try "sa-token-2\n".write(toFile: harness.tokenFile, atomically: true, encoding: .utf8)
            _ = try await WebSocketClientProbe.rfb(port: harness.port, path: "/\(token)/vm1")
            let authorizations = harness.simulator.requests.map(\.authorization)
            #expect(authorizations == ["Bearer sa-token-1", "Bearer sa-token-2"])
        }
    }

    @Test("An unreachable API server is a 502")
    func refused() async throws {
        let closedPort = try await Self.unusedPort()
        try await ProxyHarness.with(adjust: { $0.remoteURL = "wss://127.0.0.1:\(closedPort)" }) { harness in
            let response = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(try harness.token())/vm1"))
            #expect(response.status == 502)
            #expect(response.errorCode == "upstream_unreachable")
        }
    }

    @Test("An API server certificate from another CA is a 502 TLS failure")
    func wrongCA() async throws {
        try await ProxyHarness.with { harness in
            let otherCA = harness.directory.appendingPathComponent("other-ca.crt").path
            try SimulatorCertificates.generate().writeCA(to: otherCA)
            let proxy = try WebsocketProxy(configuration: .init(
                remoteURL: harness.simulator.url, secretKey: ProxyHarness.secret, host: "127.0.0.1", port: 0,
                caFilePath: otherCA, tokenFilePath: harness.tokenFile))
            let port = try proxy.runInThread().port!
            defer { Thread { proxy.stop() }.start() }
            let response = try await RawHTTP.exchange(port: port, RawHTTP.upgradeRequest(path: "/\(try harness.token())/vm1"))
            #expect(response.status == 502)
            #expect(response.errorCode == "upstream_tls_failed")
            #expect(harness.simulator.requests.isEmpty)
        }
    }

    @Test("A certificate for another host name is a 502 TLS failure")
    func hostnameMismatch() async throws {
        try await ProxyHarness.with(adjust: {
            // The simulator's certificate names localhost and 127.0.0.1, not this name, which resolves to loopback too.
            $0.remoteURL = $0.remoteURL.replacingOccurrences(of: "127.0.0.1", with: "localhost.localdomain")
        }) { harness in
            let response = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(try harness.token())/vm1"))
            #expect(response.status == 502)
            #expect(["upstream_tls_failed", "upstream_unreachable"].contains(response.errorCode ?? ""), "\(response.body)")
            #expect(harness.simulator.requests.isEmpty)
        }
    }

    @Test("An API server that accepts TCP and never answers is a 504 at the deadline")
    func handshakeStall() async throws {
        let stall = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { stall.close(promise: nil) }
        try await ProxyHarness.with(adjust: {
            $0.remoteURL = "wss://127.0.0.1:\(stall.localAddress!.port!)"
            $0.upstreamConnectTimeout = .milliseconds(500)
        }) { harness in
            let response = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(try harness.token())/vm1"))
            #expect(response.status == 504)
            #expect(response.errorCode == "upstream_timeout")
        }
    }

    @Test("An API server connection reset mid-session closes the viewer with 1001 and leaves nothing behind")
    func midStreamReset() async throws {
        let vmis: [SimulatorConfiguration.VMI] = [
            .init(namespace: ProxyHarness.namespace, name: "reset", backend: .resetOnInput),
            .init(namespace: ProxyHarness.namespace, name: "echo", backend: .echo),
        ]
        try await ProxyHarness.with(vmis: vmis) { harness in
            let token = try harness.token(vms: ["reset", "echo"])
            let code = try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/reset") { session in
                try await session.send([1, 2, 3])
                return try await session.readUntilClose()
            }
            #expect(code == .goingAway, "the viewer is told the console went away")
            #expect(await harness.eventually { harness.proxy.openConnectionCount == 0 && harness.proxy.activeSessionCount == 0 })
            #expect(await harness.eventually { harness.logs.all.contains { $0.contains("session ended") && $0.contains("vm=reset") } })
            let ended = harness.logs.all.first { $0.contains("session ended") && $0.contains("vm=reset") }
            #expect(ended?.contains("reason=upstream connection") == true, "\(ended ?? "no end line")")
            // The proxy is unharmed: the next session relays.
            let echoed = try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/echo") { session in
                try await session.send([4, 5])
                return try await session.read(count: 2)
            }
            #expect(echoed == [4, 5])
        }
    }

    @Test("An API server that stops reading stops the viewer's uploads (bounded), then the keepalive ends the session")
    func upstreamStopsReading() async throws {
        let vmis: [SimulatorConfiguration.VMI] = [.init(namespace: ProxyHarness.namespace, name: "unread", backend: .unread)]
        try await ProxyHarness.with(vmis: vmis, adjust: { $0.pingInterval = .seconds(2) }) { harness in
            let token = try harness.token(vms: ["unread"])
            let sent = NIOLockedValueBox(0)
            let chunk = [UInt8](repeating: 0x42, count: 64 * 1024)
            let code = try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/unread") { session in
                // The sender only writes and this task only reads: the session's two directions are
                // independent, so sharing it across the two tasks is safe.
                let writer = UncheckedSendableBox(session)
                let sender = Task {
                    while !Task.isCancelled {
                        try await writer.value.send(chunk)
                        sent.withLockedValue { $0 += chunk.count }
                    }
                }
                // Once kernel buffers and the proxy's write buffer are full, the viewer's sends block.
                try await Task.sleep(nanoseconds: 1_500_000_000)
                let plateau = sent.withLockedValue { $0 }
                try await Task.sleep(nanoseconds: 1_000_000_000)
                let later = sent.withLockedValue { $0 }
                print("upstream stopped reading: the viewer got \(plateau / 1024) KiB out, then \((later - plateau) / 1024) KiB more in 1 s")
                #expect(later - plateau <= 2 * chunk.count, "uploads are held back, not buffered by the proxy")
                // What did get out sits in kernel socket buffers, which autotune up to tcp_rmem's maximum
                // (32 MiB on this machine) on each of the two connections.
                #expect(later < 96 << 20, "a bounded amount was accepted")
                let code = try await session.readUntilClose()
                sender.cancel()
                return code
            }
            #expect(code == .goingAway)
            // The end line follows once the upstream leg is closed too (its close handshake gets closeTimeout).
            #expect(await harness.eventually { harness.logs.all.contains { $0.contains("session ended") } })
            let ended = harness.logs.all.first { $0.contains("session ended") }
            #expect(ended?.contains("did not answer ping") == true, "\(ended ?? "no end line")")
            #expect(await harness.eventually { harness.proxy.openConnectionCount == 0 })
        }
    }

    @Test("Local dev mode speaks plain ws:// with no credentials")
    func localDevMode() async throws {
        let simulator = try KubeVirtSimulator(configuration: SimulatorConfiguration(
            useTLS: false, vmis: [.init(namespace: "lab-ns", name: "vm1")]))
        defer { simulator.stop() }
        let proxy = try WebsocketProxy(configuration: .init(
            remoteURL: simulator.url, localDevMode: true, secretKey: ProxyHarness.secret, host: "127.0.0.1", port: 0,
            caFilePath: "/nonexistent/ca.crt", tokenFilePath: "/nonexistent/token"))
        let port = try proxy.runInThread().port!
        defer { proxy.stop() }
        let token = try TokenSigner(secret: ProxyHarness.secret).sign(namespace: "lab-ns", vmNames: ["vm1"], lifetime: 60)
        let result = try await WebSocketClientProbe.rfb(port: port, path: "/\(token)/vm1")
        #expect(result.width == 640)
        #expect(simulator.requests.first?.authorization == nil)
    }

    @Test("preserveSession is sent only when configured")
    func preserveSession() async throws {
        try await ProxyHarness.with(adjust: { $0.preserveSession = true }) { harness in
            _ = try await WebSocketClientProbe.rfb(port: harness.port, path: "/\(try harness.token())/vm1")
            #expect(harness.simulator.requests.first?.uri.hasSuffix("/vm1/vnc?preserveSession=true") == true)
        }
    }

    static func unusedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }
}

/// Hands a value that is not Sendable to another task, where the test guarantees the two never race.
struct UncheckedSendableBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
