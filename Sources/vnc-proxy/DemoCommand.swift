import ArgumentParser
import Foundation
import KubeVirtSimulator
import Logging
import NIOCore
import ServiceLifecycle
import VNCProxy
import WebSocketSupport

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start the KubeVirt simulator and the proxy in one process and print a URL, a token and a curl probe.")

    @Option(help: "Address the proxy listens on.")
    var host = "127.0.0.1"

    @Option(help: "Port the proxy listens on; 0 picks a free one.")
    var port = 5001

    @Option(help: "Namespace of the demo VMI.")
    var namespace = "demo"

    @Option(help: "Name of the demo VMI.")
    var vm = "testvm"

    @Option(help: "Serve the demo VMI from a real VNC server at HOST:PORT instead of the built-in test pattern.")
    var vncServer: String?

    @Flag(help: "Connect through the proxy, complete an RFB handshake, print what arrived, and exit.")
    var selfTest = false

    @Option(help: "trace, debug, info, notice, warning, error or critical [LOGLEVEL].")
    var logLevel: String?

    func run() async throws {
        let logger = LoggingSetup.bootstrap(levelName: self.logLevel ?? Environment.string("LOGLEVEL"))
        let backend: ConsoleBackend
        if let vncServer = self.vncServer {
            guard let parsed = ConsoleBackend(argument: vncServer), case .tcp = parsed else {
                exitWithStartupError("--vnc-server must be HOST:PORT")
            }
            backend = parsed
        } else {
            backend = .testPattern
        }

        // The pod's service-account mount, in a temporary directory.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vnc-proxy-demo-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let caFile = directory.appendingPathComponent("ca.crt").path
        let tokenFile = directory.appendingPathComponent("token").path
        try (UUID().uuidString + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)

        let simulator = try KubeVirtSimulator(configuration: SimulatorConfiguration(
            tokenFilePath: tokenFile,
            grantedNamespaces: [self.namespace],
            vmis: [.init(namespace: self.namespace, name: self.vm, backend: backend)]))
        defer { simulator.stop() }
        try simulator.certificates.writeCA(to: caFile)

        let secret = "demo-secret-" + UUID().uuidString
        let proxy = try WebsocketProxy(
            configuration: .init(
                remoteURL: simulator.url, secretKey: secret, host: self.host, port: self.port,
                caFilePath: caFile, tokenFilePath: tokenFile),
            logger: logger)
        let address = try proxy.runInThread()
        let token = try TokenSigner(secret: secret).sign(namespace: self.namespace, vmNames: [self.vm], lifetime: 3600)
        let proxyHost = address.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? self.host
        let proxyPort = address.port ?? self.port
        let url = "ws://\(proxyHost):\(proxyPort)/\(token)/\(self.vm)"

        writeOutput("""
            vnc-proxy demo: the proxy and a simulated KubeVirt API are running.
              simulated API  \(simulator.url)  (CA \(caFile), bearer token \(tokenFile))
              proxy          ws://\(proxyHost):\(proxyPort)
              VMI            \(self.namespace)/\(self.vm)  (\(self.vncServer ?? "built-in RFB test pattern"))
              secret         \(secret)
              token          \(token)
              websocket URL  \(url)

            Probe it with curl (expect 101 Switching Protocols, then the VNC greeting RFB 003.008):
              curl -i -N --http1.1 --max-time 3 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \\
                -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \\
                'http://\(proxyHost):\(proxyPort)/\(token)/\(self.vm)'
            """)

        if self.selfTest {
            defer { proxy.stop() }
            let result = try await WebSocketClient.withConnection(
                host: proxyHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: proxyPort,
                path: "/\(token)/\(self.vm)", subprotocols: ["binary"]
            ) { session in
                try await RFBProbe.run(on: session)
            }
            writeOutput("self-test: RFB handshake complete through the proxy: \(result.width)x\(result.height) \"\(result.name)\", "
                  + "first pixels \(result.pixels.prefix(2).map { $0.map(String.init).joined(separator: ",") })")
            return
        }
        writeOutput("\nPress Ctrl-C to stop.")
        try await ServiceGroup(services: [ProxyService(proxy: proxy, alreadyRunning: true)],
                               gracefulShutdownSignals: [.sigterm, .sigint], logger: logger).run()
    }
}
