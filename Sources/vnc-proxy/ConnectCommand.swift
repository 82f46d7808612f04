import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import WebSocketSupport

/// `virtctl vnc --proxy-only` for this proxy: a local TCP port for a native VNC viewer, bridged to
/// the proxy's websocket.
struct ConnectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect",
        abstract: "Listen on a local TCP port and bridge each VNC viewer that connects to the proxy's websocket.")

    @Argument(help: "ws(s)://HOST[:PORT]/[PREFIX/]TOKEN/VM, or ws(s)://HOST[:PORT]/[PREFIX/]VM with the token given separately.")
    var url: String

    @Option(help: "Local address to listen on.")
    var listen = "127.0.0.1:5900"

    @Option(help: "The token [VNC_PROXY_TOKEN]; it is inserted before the VM name in the path.")
    var token: String?

    @Option(help: "Read the token from this file.")
    var tokenFile: String?

    @Option(help: "CA bundle to trust for wss:// (default: the system roots).")
    var caFile: String?

    @Flag(help: "Exit after the first viewer disconnects.")
    var once = false

    func run() async throws {
        let target: ProxyURL
        do {
            target = try ProxyURL(self.url, token: try self.resolveToken())
        } catch {
            exitWithStartupError("\(error)")
        }
        guard let (listenHost, listenPort) = Self.hostPort(self.listen) else {
            exitWithStartupError("--listen must be HOST:PORT")
        }
        let tls: NIOSSLContext?
        do {
            tls = try target.secure ? Self.tlsContext(caFile: self.caFile) : nil
        } catch {
            exitWithStartupError("cannot load CA file \(self.caFile ?? ""): \(error)")
        }

        let once = self.once
        let group = MultiThreadedEventLoopGroup.singleton
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { viewer in
                Self.bridge(viewer: viewer, to: target, tls: tls).whenComplete { result in
                    switch result {
                    case .success:
                        log("viewer \(viewer.remoteAddress?.description ?? "?") connected to \(target.redacted)")
                    case .failure(let error):
                        log(Self.describe(error))
                        viewer.close(promise: nil)
                    }
                    if once { viewer.closeFuture.whenComplete { _ in Foundation.exit(0) } }
                }
                return viewer.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: listenHost, port: listenPort).get()
        let port = server.localAddress?.port ?? listenPort
        writeOutput("""
            vnc-proxy connect: listening on \(listenHost):\(port), bridging to \(target.redacted)
            Point a VNC viewer at it, e.g.:
              vncviewer \(listenHost)::\(port)
            """)
        try await server.closeFuture.get()
    }

    private func resolveToken() throws -> String? {
        if let token = self.token { return token }
        if let file = self.tokenFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw StartupError(description: "cannot read token file \(file)")
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return Environment.string("VNC_PROXY_TOKEN")
    }

    /// Dials the proxy on the viewer's event loop and joins the two once the proxy has said 101.
    static func bridge(viewer: Channel, to target: ProxyURL, tls: NIOSSLContext?) -> EventLoopFuture<Void> {
        let handshake = viewer.eventLoop.makePromise(of: String?.self)
        let request = ClientUpgradeRequest(host: target.hostHeader, path: target.path, subprotocols: ["binary"])
        let serverHostname = target.hostIsIP ? nil : target.host
        let connect = ClientBootstrap(group: viewer.eventLoop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { webSocket in
                webSocket.eventLoop.makeCompletedFuture {
                    if let tls {
                        try webSocket.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverHostname))
                    }
                    try webSocket.pipeline.syncOperations.addWebSocketClientUpgrade(
                        request: request, maxFrameSize: 16 << 20, promise: handshake
                    ) { webSocket in
                        try ByteStreamBridge.join(stream: viewer, webSocket: webSocket)
                        viewer.setOption(.autoRead, value: true).whenFailure { _ in viewer.close(promise: nil) }
                    }
                }
            }
            .connect(host: target.host, port: target.port)
        connect.whenFailure { handshake.fail($0) }
        connect.whenSuccess { webSocket in
            viewer.closeFuture.whenComplete { _ in
                // If the viewer left before the bridge was joined, nobody else closes the websocket.
                webSocket.eventLoop.scheduleTask(in: .seconds(3)) { webSocket.close(promise: nil) }
            }
        }
        return handshake.futureResult.map { _ in }
    }

    static func describe(_ error: Error) -> String {
        if case ClientHandshakeError.rejected(let status, let body) = error {
            struct Refusal: Decodable { var error: String?; var reason: String? }
            let refusal = try? JSONDecoder().decode(Refusal.self, from: Data(body.utf8))
            let detail = [refusal?.error, refusal?.reason.map { "(\($0))" }].compactMap { $0 }.joined(separator: " ")
            let hint: String
            switch status.code {
            case 401: hint = "the token is invalid or expired; mint a new one"
            case 403: hint = "the token does not allow this VM"
            case 404: hint = "no such VM, or a wrong path prefix"
            default: hint = "see the proxy's log"
            }
            return "proxy refused the connection: \(status.code) \(detail.isEmpty ? status.reasonPhrase : detail); \(hint)"
        }
        return "cannot reach the proxy: \(error)"
    }

    static func tlsContext(caFile: String?) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
        }
        return try NIOSSLContext(configuration: configuration)
    }

    static func hostPort(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        let host = text[..<colon].trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }
}

/// The proxy URL `connect` dials, with the token placed in the path when given separately.
struct ProxyURL: Sendable {
    var secure: Bool
    var host: String
    var port: Int
    var path: String

    init(_ url: String, token: String?) throws {
        let lower = url.lowercased()
        if lower.hasPrefix("wss://") || lower.hasPrefix("https://") {
            self.secure = true
        } else if lower.hasPrefix("ws://") || lower.hasPrefix("http://") {
            self.secure = false
        } else {
            throw StartupError(description: "the URL must start with ws:// or wss://")
        }
        let rest = url[url.range(of: "://")!.upperBound...]
        let authority = rest.prefix { $0 != "/" }
        var path = String(rest.dropFirst(authority.count))
        guard let (host, port) = ConnectCommand.hostPort(authority.contains(":") && !authority.hasSuffix("]")
                                                         ? String(authority) : "\(authority):\(self.secure ? 443 : 80)") else {
            throw StartupError(description: "cannot read host and port from \(url)")
        }
        if let token {
            guard let slash = path.lastIndex(of: "/") else { throw StartupError(description: "the URL needs a VM name") }
            path.insert(contentsOf: "/" + token, at: slash)
        }
        guard path.split(separator: "/").count >= 2 else {
            throw StartupError(description: "the URL needs /TOKEN/VM (or a VM and --token)")
        }
        self.host = host
        self.port = port
        self.path = path
    }

    var hostIsIP: Bool { (try? SocketAddress(ipAddress: self.host, port: 0)) != nil }
    var hostHeader: String { "\(self.host.contains(":") ? "[\(self.host)]" : self.host):\(self.port)" }

    /// The URL with its token segment hidden, for messages.
    var redacted: String {
        var segments = self.path.split(separator: "/").map(String.init)
        if segments.count >= 2 { segments[segments.count - 2] = "<token>" }
        return "\(self.secure ? "wss" : "ws")://\(self.hostHeader)/" + segments.joined(separator: "/")
    }
}

private func log(_ message: String) {
    FileHandle.standardError.write(Data("vnc-proxy connect: \(message)\n".utf8))
}
