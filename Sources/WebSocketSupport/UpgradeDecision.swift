import NIOCore
import NIOHTTP1

/// A request that has arrived in full, ready to be answered or upgraded.
public struct IncomingRequest: Sendable {
    public var head: HTTPRequestHead
    /// Present when the request is a well-formed RFC 6455 upgrade: its `Sec-WebSocket-Key`.
    public var webSocketKey: String?
    public var remoteAddress: SocketAddress?

    public var isWebSocketUpgrade: Bool { self.webSocketKey != nil }

    /// The subprotocols the client offered, in its order of preference.
    public var offeredSubprotocols: [String] {
        self.head.headers[canonicalForm: "sec-websocket-protocol"].map { String($0) }.filter { !$0.isEmpty }
    }
}

/// How a server answers an `IncomingRequest`.
public enum UpgradeDecision: Sendable {
    /// A plain HTTP response; the connection closes after it is written.
    case respond(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer)
    /// Switch to websocket: send 101 with `headers` (the handshake headers are added), install the
    /// frame codec, then call `configure` on the event loop to add the handlers that speak websocket.
    case upgrade(headers: HTTPHeaders, configure: @Sendable (Channel) throws -> Void)
}

/// The server's policy: what to do with each request, and how to phrase a protocol error.
public protocol UpgradeResponder: Sendable {
    /// Decides on a complete request. Runs on the connection's event loop; the future may finish later.
    func decide(_ request: IncomingRequest, channel: Channel) -> EventLoopFuture<UpgradeDecision>

    /// The answer to a request that could not be parsed, a bad handshake, or a timeout.
    func protocolError(status: HTTPResponseStatus, reason: String, allocator: ByteBufferAllocator) -> UpgradeDecision

    /// Called once when the connection has been answered with a plain response or has failed before deciding.
    func requestFinished(_ request: IncomingRequest?, status: HTTPResponseStatus)
}

extension UpgradeResponder {
    public func requestFinished(_ request: IncomingRequest?, status: HTTPResponseStatus) {}
}
