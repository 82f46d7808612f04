import Logging
import NIOCore
import NIOPosix
import NIOSSL
import WebSocketSupport

/// A stand-in for the Kubernetes API server's KubeVirt VNC subresource: TLS, bearer tokens,
/// namespace grants, `Status` errors, `plain.kubevirt.io`, one session per VMI, and a console behind
/// each VMI (a built-in RFB server, a real VNC server over TCP, or an echo).
public final class KubeVirtSimulator: Sendable {
    public let configuration: SimulatorConfiguration
    /// The generated (or loaded) CA and server certificate; trust `certificates.caPEM`.
    public let certificates: SimulatorCertificates
    private let state = SimulatorState()
    private let group: MultiThreadedEventLoopGroup
    private let ownsGroup: Bool
    private let channel: Channel

    /// Starts listening; the simulator runs on its own threads until `stop()`.
    public init(
        configuration: SimulatorConfiguration,
        certificates: SimulatorCertificates? = nil,
        group: MultiThreadedEventLoopGroup? = nil
    ) throws {
        self.configuration = configuration
        let certificates = try certificates ?? SimulatorCertificates.generate()
        self.certificates = certificates
        let tlsContext = configuration.useTLS ? try certificates.makeServerContext() : nil
        self.ownsGroup = group == nil
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let responder = VirtAPIResponder(configuration: configuration, state: self.state)
        let limits = ServerUpgradeHandler.Limits(maxFrameSize: configuration.maxFrameSize)
        self.channel = try ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext))
                    }
                    try channel.pipeline.syncOperations.addUpgradableHTTPServer(responder: responder, limits: limits)
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .wait()
    }

    public var port: Int { self.channel.localAddress?.port ?? 0 }

    /// `wss://127.0.0.1:PORT` (or `ws://` without TLS): the proxy's remote URL.
    public var url: String {
        let host = self.configuration.host.contains(":") ? "[\(self.configuration.host)]" : self.configuration.host
        return "\(self.configuration.useTLS ? "wss" : "ws")://\(host):\(self.port)"
    }

    /// Every request received, oldest first (the last 10,000).
    public var requests: [RecordedRequest] { self.state.requests }
    /// Key events that reached built-in RFB consoles.
    public var keyEvents: [RecordedKeyEvent] { self.state.keyEvents }
    /// Open VNC sessions, at most one per VMI.
    public var activeSessionCount: Int { self.state.sessionCount }

    /// Blocks until the listener closes (after `stop()` from another thread).
    public func wait() throws {
        try self.channel.closeFuture.wait()
    }

    public func stop() {
        try? self.channel.close().wait()
        if self.ownsGroup { try? self.group.syncShutdownGracefully() }
    }
}
