import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import WebSocketSupport

/// Opens the websocket to KubeVirt's VNC subresource for one session.
struct UpstreamDialer: Sendable {
    /// The only subprotocol virt-api's upgrader knows.
    static let kubevirtSubprotocol = "plain.kubevirt.io"

    let endpoint: UpstreamEndpoint
    let path: UpstreamPath
    let credentials: KubernetesCredentials
    let maxFrameSize: Int
    let timeout: TimeAmount
    let writeBufferHighWaterMark: Int

    /// Connects on `eventLoop` (the client's, so the relay needs no locks), sends the bearer token,
    /// and completes once the upstream has answered 101. `configure` adds the upstream relay half.
    ///
    /// The whole of TCP connect, TLS and the websocket handshake shares one deadline.
    func dial(
        namespace: String,
        vmName: String,
        on eventLoop: EventLoop,
        configure: @escaping @Sendable (Channel) throws -> Void
    ) -> EventLoopFuture<Channel> {
        let bearerToken: String?
        do {
            bearerToken = try self.credentials.bearerToken()
        } catch {
            return eventLoop.makeFailedFuture(UpstreamError.credentialsUnavailable(error.description))
        }
        var headers = HTTPHeaders()
        if let bearerToken { headers.add(name: "authorization", value: "Bearer \(bearerToken)") }
        let request = ClientUpgradeRequest(
            host: self.endpoint.hostHeader,
            path: self.path.path(namespace: namespace, vmName: vmName),
            subprotocols: [Self.kubevirtSubprotocol],
            headers: headers)

        let handshake = eventLoop.makePromise(of: String?.self)
        let tlsContext = self.endpoint.useTLS ? self.credentials.tlsContext : nil
        // An IP address is not a valid SNI name; the certificate's IP SANs are still verified.
        let serverHostname = self.endpoint.hostIsIPAddress ? nil : self.endpoint.host
        let maxFrameSize = self.maxFrameSize
        let connect = ClientBootstrap(group: eventLoop)
            .connectTimeout(self.timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: self.writeBufferHighWaterMark / 2,
                                                              high: self.writeBufferHighWaterMark))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tlsContext {
                        try pipeline.addHandler(NIOSSLClientHandler(context: tlsContext, serverHostname: serverHostname))
                    }
                    try pipeline.addWebSocketClientUpgrade(
                        request: request, maxFrameSize: maxFrameSize, promise: handshake, configure: configure)
                }
            }
            .connect(host: self.endpoint.host, port: self.endpoint.port)

        let deadline = eventLoop.scheduleTask(in: self.timeout) {
            handshake.fail(UpstreamError.timedOut)
            connect.whenSuccess { $0.close(promise: nil) }
        }
        connect.whenFailure { handshake.fail(UpstreamError($0)) }
        return connect.flatMap { channel in
            handshake.futureResult.map { _ in channel }
        }.flatMapErrorThrowing { error in
            connect.whenSuccess { $0.close(promise: nil) }
            throw UpstreamError(error)
        }.always { _ in
            deadline.cancel()
        }
    }
}

extension UpstreamEndpoint {
    var hostIsIPAddress: Bool {
        (try? SocketAddress(ipAddress: self.host, port: 0)) != nil
    }
}
