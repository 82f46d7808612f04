import KubeVirtSimulator
import WebSocketSupport

/// One-line RFB checks through a proxy, for tests that only need to know a session still works.
enum WebSocketClientProbe {
    static func rfb(port: Int, path: String) async throws -> RFBProbe.Result {
        try await WebSocketClient.withConnection(host: "127.0.0.1", port: port, path: path) { try await RFBProbe.run(on: $0) }
    }
}
