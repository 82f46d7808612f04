// Embeds the proxy in a program with runInThread()/stop(), like the original's run_in_thread().
// Runs against the built-in KubeVirt simulator so it works anywhere: swift run embedding-in-thread
import Foundation
import KubeVirtSimulator
import VNCProxy
import WebSocketSupport

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("embedding-\(getpid())")
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
let address = try proxy.runInThread()  // returns once listening
print("proxy listening on port \(address.port!)")

let token = try TokenSigner(secret: secret).sign(namespace: "lab", vmNames: ["ubuntu"], lifetime: 60)
// This thread blocks below, so the viewer runs detached: a plain Task would inherit the main actor
// and wait for this very thread.
let semaphore = DispatchSemaphore(value: 0)
Task.detached {
    let greeting = try await Viewer.greeting(port: address.port!, path: "/\(token)/ubuntu")
    print("the VM said: \(greeting)")
    semaphore.signal()
}
semaphore.wait()
proxy.stop()  // closes sessions, frees the port
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
