// Embeds the proxy with `run() async`: it runs as a child task and stops when the task is cancelled.
// Runs against the built-in KubeVirt simulator: swift run embedding-async
import Foundation
import KubeVirtSimulator
import VNCProxy
import WebSocketSupport

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("embedding-async-\(getpid())")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
let caFile = directory.appendingPathComponent("ca.crt").path
let tokenFile = directory.appendingPathComponent("token").path
try "service-account-token".write(toFile: tokenFile, atomically: true, encoding: .utf8)

let simulator = try KubeVirtSimulator(configuration: .init(
    tokenFilePath: tokenFile, vmis: [.init(namespace: "lab", name: "ubuntu")]))
try simulator.certificates.writeCA(to: caFile)

let secret = "an example secret that is long enough"
let proxy = try WebsocketProxy(configuration: .init(
    remoteURL: simulator.url, secretKey: secret, host: "127.0.0.1", port: 0,
    caFilePath: caFile, tokenFilePath: tokenFile))

try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask { try await proxy.run() }
    while proxy.localAddress == nil { try await Task.sleep(nanoseconds: 10_000_000) }
    let port = proxy.localAddress!.port!
    let token = try TokenSigner(secret: secret).sign(namespace: "lab", vmNames: ["ubuntu"], lifetime: 60)
    let greeting = try await Viewer.greeting(port: port, path: "/\(token)/ubuntu")
    print("the VM said: \(greeting)")
    group.cancelAll()  // cancelling the task stops the proxy gracefully
}
simulator.stop()
print("stopped")

/// A viewer's first look through the proxy: the VNC server's greeting.
enum Viewer {
    static func greeting(port: Int, path: String) async throws -> String {
        let bytes = try await WebSocketClient.withConnection(host: "127.0.0.1", port: port, path: path) { session in
            try await session.read(count: 12)
        }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .newlines)
    }
}
