import Foundation
import NIOCore
import NIOPosix
import Testing

/// `vnc-proxy connect` as a native viewer uses it: a local TCP port bridged to the proxy.
@Suite("vnc-proxy connect bridge")
struct ConnectBridgeTests {
    /// Starts `vnc-proxy connect`, waits for its listening line, and returns the process and its port.
    static func startBridge(url: String, token: String) async throws -> (Process, Pipe, Int) {
        let process = Process()
        process.executableURL = CLITests.binary
        // Port 0: the bridge picks a free port and prints it (a port probed free beforehand can be taken
        // by another test's connections before the bridge binds it).
        process.arguments = ["connect", url, "--token", token, "--listen", "127.0.0.1:0"]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let line = String(decoding: try await offCooperativePool { output.fileHandleForReading.availableData }, as: UTF8.self)
        let port = line.range(of: #"listening on 127\.0\.0\.1:(\d+)"#, options: .regularExpression)
            .flatMap { Int(line[$0].split(separator: ":").last ?? "") }
        return (process, errors, try #require(port, "no listening line: \(line)"))
    }

    /// Reads from a plain TCP connection, as a VNC viewer does.
    static func tcpSession(port: Int, send: [UInt8], receive count: Int) async throws -> [UInt8] {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let deadline = channel.channel.eventLoop.scheduleTask(in: .seconds(10)) { channel.channel.close(promise: nil) }
        defer { deadline.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            var received: [UInt8] = []
            var iterator = inbound.makeAsyncIterator()
            if !send.isEmpty { try await outbound.write(ByteBuffer(bytes: send)) }
            while received.count < count, let chunk = try await iterator.next() {
                received += Array(chunk.readableBytesView)
            }
            return received
        }
    }

    @Test("A viewer on the local TCP port gets the VM's RFB greeting and its answers")
    func bridgesRFB() async throws {
        try await ProxyHarness.with { harness in
            let (process, _, port) = try await Self.startBridge(url: "ws://127.0.0.1:\(harness.port)/echo", token: try harness.token())
            defer { process.terminate() }
            let echoed = try await Self.tcpSession(port: port, send: Array("through the bridge".utf8), receive: 18)
            #expect(echoed == Array("through the bridge".utf8))
            let (process2, _, port2) = try await Self.startBridge(url: "ws://127.0.0.1:\(harness.port)/vm1", token: try harness.token())
            defer { process2.terminate() }
            let greeting = try await Self.tcpSession(port: port2, send: [], receive: 12)
            #expect(greeting == Array("RFB 003.008\n".utf8))
        }
    }

    @Test("A refused token closes the viewer's connection and says why")
    func explainsRefusal() async throws {
        try await ProxyHarness.with { harness in
            let (process, errors, port) = try await Self.startBridge(
                url: "ws://127.0.0.1:\(harness.port)/vm1", token: try harness.token(lifetime: -60))
            let received = try await Self.tcpSession(port: port, send: [], receive: 1)
            #expect(received.isEmpty)
            process.terminate()
            let message = try await offCooperativePool {
                process.waitUntilExit()
                return String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            }
            #expect(message.contains("proxy refused the connection: 401 token_expired"), "\(message)")
        }
    }
}
