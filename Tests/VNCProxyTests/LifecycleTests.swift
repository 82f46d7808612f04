import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing
import VNCProxy
import WebSocketSupport

@Suite("Starting and stopping the proxy")
struct LifecycleTests {
    @Test("runInThread, stop, the port is free again, and the proxy starts again")
    func restartOnSamePort() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            _ = try await WebSocketClientProbe.rfb(port: harness.port, path: "/\(token)/vm1")
            await offCooperativePool { harness.proxy.stop() }
            await #expect(throws: (any Error).self) {
                _ = try await RawHTTP.exchange(port: harness.port, "GET / HTTP/1.1\r\n\r\n")
            }
            // The port is free again: another proxy binds it, and the stopped one can start once more.
            let reused = try WebsocketProxy(configuration: .init(
                remoteURL: harness.simulator.url, secretKey: ProxyHarness.secret, host: "127.0.0.1", port: harness.port,
                caFilePath: harness.caFile, tokenFilePath: harness.tokenFile))
            #expect(try reused.runInThread().port == harness.port)
            await offCooperativePool { reused.stop() }
            // The stopped proxy starts again (its port 0 picks a new free port).
            let restarted = try #require(try harness.proxy.runInThread().port)
            _ = try await WebSocketClientProbe.rfb(port: restarted, path: "/\(token)/vm1")
        }
    }

    @Test("Starting twice is refused; stopping twice or before starting does nothing")
    func doubleStartStop() throws {
        let proxy = try WebsocketProxy(configuration: .init(
            remoteURL: "ws://127.0.0.1:1", localDevMode: true, secretKey: "s", host: "127.0.0.1", port: 0))
        proxy.stop()
        _ = try proxy.runInThread()
        #expect(throws: ConfigurationError.self) { try proxy.runInThread() }
        proxy.stop()
        proxy.stop()
        #expect(proxy.localAddress == nil)
    }

    @Test("stop() closes live sessions with 1001 and returns when they are gone")
    func stopClosesSessions() async throws {
        try await ProxyHarness.with { harness in
            let token = try harness.token()
            let stopReturned = NIOLockedValueBox<Int?>(nil)
            let code = try await WebSocketClient.withConnection(host: "127.0.0.1", port: harness.port, path: "/\(token)/vm1") { session in
                _ = try await session.read(count: 12)
                Thread {
                    harness.proxy.stop()
                    stopReturned.withLockedValue { $0 = harness.proxy.openConnectionCount }
                }.start()
                return try await session.readUntilClose()
            }
            #expect(code == .goingAway)
            #expect(await harness.eventually { stopReturned.withLockedValue { $0 } != nil })
            #expect(stopReturned.withLockedValue { $0 } == 0, "no connection is left when stop() returns")
        }
    }

    @Test("run() async stops when its task is cancelled")
    func asyncRunCancellation() async throws {
        let proxy = try WebsocketProxy(configuration: .init(
            remoteURL: "ws://127.0.0.1:1", localDevMode: true, secretKey: "s", host: "127.0.0.1", port: 0))
        let task = Task { try await proxy.run() }
        let harnessWait = Date().addingTimeInterval(5)
        while proxy.localAddress == nil && Date() < harnessWait { try await Task.sleep(nanoseconds: 10_000_000) }
        let port = try #require(proxy.localAddress?.port)
        let response = try await RawHTTP.exchange(port: port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(response.status == 404)
        task.cancel()
        try await task.value
        #expect(proxy.localAddress == nil)
    }

    @Test("A missing CA file fails at start with a clear error")
    func missingCAFile() throws {
        let proxy = try WebsocketProxy(configuration: .init(
            remoteURL: "wss://127.0.0.1:6443", secretKey: "s", host: "127.0.0.1", port: 0,
            caFilePath: "/nonexistent/ca.crt", tokenFilePath: "/nonexistent/token"))
        #expect {
            try proxy.runInThread()
        } throws: { error in
            "\(error)".contains("/nonexistent/ca.crt")
        }
    }

    @Test("Configurations that cannot work are refused before start", arguments: [
        WebsocketProxy.Configuration(remoteURL: "ftp://x", secretKey: "s"),
        WebsocketProxy.Configuration(remoteURL: "wss://x", localDevMode: true, secretKey: "s"),
        WebsocketProxy.Configuration(remoteURL: "wss://x", secretKey: ""),
        WebsocketProxy.Configuration(remoteURL: "wss://x", apiPathTemplate: "/no/placeholders", secretKey: "s"),
        WebsocketProxy.Configuration(remoteURL: "wss://x:99999", secretKey: "s"),
    ])
    func invalidConfiguration(_ configuration: WebsocketProxy.Configuration) {
        #expect(throws: ConfigurationError.self) { try WebsocketProxy(configuration: configuration) }
    }
}
