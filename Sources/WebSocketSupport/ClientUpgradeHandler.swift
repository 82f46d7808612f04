import NIOCore
import NIOHTTP1

/// Why a websocket client handshake did not complete.
public enum ClientHandshakeError: Error, Sendable, Equatable {
    /// The server answered with something other than 101; `body` is at most `maxBodySize` bytes of it.
    case rejected(status: HTTPResponseStatus, body: String)
    /// The server said 101 but its `Sec-WebSocket-Accept` or `Upgrade` header was wrong.
    case invalidUpgradeResponse(String)
    /// The connection ended before the handshake finished.
    case connectionClosed
}

/// What the client asks for in its upgrade request.
public struct ClientUpgradeRequest: Sendable {
    public var host: String
    public var path: String
    public var subprotocols: [String]
    public var headers: HTTPHeaders

    public init(host: String, path: String, subprotocols: [String] = [], headers: HTTPHeaders = [:]) {
        self.host = host
        self.path = path
        self.subprotocols = subprotocols
        self.headers = headers
    }
}

/// Sends an RFC 6455 upgrade request as soon as the channel is active and completes `promise` with the
/// subprotocol the server chose once the server's 101 has been verified and the frame codec installed.
///
/// `configure` runs once the HTTP encoder is gone and before the HTTP decoder is removed, so frames the server sent right behind its 101
/// (a VNC server speaks first) reach the handlers it adds.
public final class ClientUpgradeHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPClientResponsePart
    public typealias OutboundOut = HTTPClientRequestPart

    private enum State {
        case idle
        case awaitingResponse
        case readingRejection(HTTPResponseStatus, ByteBuffer)
        case awaitingUpgradeEnd(subprotocol: String?)
        case done
    }

    private let request: ClientUpgradeRequest
    private let key = WebSocketKeys.makeClientKey()
    private let maxFrameSize: Int
    private let maxBodySize: Int
    private let httpEncoder: RemovableChannelHandler
    private let httpDecoder: RemovableChannelHandler
    private let configure: (Channel) throws -> Void
    private let promise: EventLoopPromise<String?>
    private var state = State.idle

    public init(
        request: ClientUpgradeRequest,
        maxFrameSize: Int,
        maxBodySize: Int = 64 * 1024,
        httpEncoder: RemovableChannelHandler,
        httpDecoder: RemovableChannelHandler,
        promise: EventLoopPromise<String?>,
        configure: @escaping (Channel) throws -> Void
    ) {
        self.request = request
        self.maxFrameSize = maxFrameSize
        self.maxBodySize = maxBodySize
        self.httpEncoder = httpEncoder
        self.httpDecoder = httpDecoder
        self.promise = promise
        self.configure = configure
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.sendRequest(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        self.sendRequest(context: context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        self.fail(ClientHandshakeError.connectionClosed, context: context)
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.fail(error, context: context)
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (self.unwrapInboundIn(data), self.state) {
        case (.head(let head), .awaitingResponse):
            if head.status == .switchingProtocols {
                self.checkUpgrade(head, context: context)
            } else {
                self.state = .readingRejection(head.status, context.channel.allocator.buffer(capacity: 0))
            }
        case (.body(var chunk), .readingRejection(let status, var body)):
            let room = max(0, self.maxBodySize - body.readableBytes)
            if let kept = chunk.readSlice(length: min(room, chunk.readableBytes)) {
                body.writeImmutableBuffer(kept)
            }
            self.state = .readingRejection(status, body)
        case (.end, .readingRejection(let status, let body)):
            self.fail(ClientHandshakeError.rejected(status: status, body: String(buffer: body)), context: context)
        case (.end, .awaitingUpgradeEnd(let subprotocol)):
            self.switchToWebSocket(context: context, subprotocol: subprotocol)
        default:
            break
        }
    }

    private func sendRequest(context: ChannelHandlerContext) {
        guard case .idle = self.state else { return }
        self.state = .awaitingResponse
        var headers = self.request.headers
        headers.replaceOrAdd(name: "host", value: self.request.host)
        headers.replaceOrAdd(name: "upgrade", value: "websocket")
        headers.replaceOrAdd(name: "connection", value: "Upgrade")
        headers.replaceOrAdd(name: "sec-websocket-key", value: self.key)
        headers.replaceOrAdd(name: "sec-websocket-version", value: "13")
        if !self.request.subprotocols.isEmpty {
            headers.replaceOrAdd(name: "sec-websocket-protocol", value: self.request.subprotocols.joined(separator: ", "))
        }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: self.request.path, headers: headers)
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func checkUpgrade(_ head: HTTPResponseHead, context: ChannelHandlerContext) {
        guard head.headers[canonicalForm: "upgrade"].contains(where: { $0.lowercased() == "websocket" }) else {
            return self.fail(ClientHandshakeError.invalidUpgradeResponse("missing Upgrade: websocket"), context: context)
        }
        guard head.headers["sec-websocket-accept"].first == WebSocketKeys.acceptValue(forClientKey: self.key) else {
            return self.fail(ClientHandshakeError.invalidUpgradeResponse("wrong Sec-WebSocket-Accept"), context: context)
        }
        let chosen = head.headers["sec-websocket-protocol"].first
        if let chosen, !self.request.subprotocols.contains(chosen) {
            return self.fail(ClientHandshakeError.invalidUpgradeResponse("server chose a subprotocol not offered"), context: context)
        }
        self.state = .awaitingUpgradeEnd(subprotocol: chosen)
    }

    private func switchToWebSocket(context: ChannelHandlerContext, subprotocol: String?) {
        self.state = .done
        do {
            let pipeline = context.pipeline.syncOperations
            pipeline.removeHandler(self.httpEncoder, promise: nil)
            try pipeline.addWebSocketCodec(maxFrameSize: self.maxFrameSize)
            try self.configure(context.channel)
            pipeline.removeDecoderForwardingLeftovers(self.httpDecoder, channel: context.channel)
            pipeline.removeHandler(context: context, promise: nil)
            self.promise.succeed(subprotocol)
        } catch {
            self.promise.fail(error)
            context.close(promise: nil)
        }
    }

    private func fail(_ error: Error, context: ChannelHandlerContext) {
        switch self.state {
        case .done:
            return
        default:
            self.state = .done
            self.promise.fail(error)
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension ClientUpgradeHandler: Sendable {}

extension ChannelPipeline.SynchronousOperations {
    /// Adds an HTTP/1.1 client that performs the websocket handshake described by `request`.
    public func addWebSocketClientUpgrade(
        request: ClientUpgradeRequest,
        maxFrameSize: Int,
        promise: EventLoopPromise<String?>,
        configure: @escaping (Channel) throws -> Void
    ) throws {
        let encoder = HTTPRequestEncoder()
        let decoder = ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes))
        try self.addHandler(encoder)
        try self.addHandler(decoder)
        try self.addHandler(ClientUpgradeHandler(
            request: request, maxFrameSize: maxFrameSize, httpEncoder: encoder, httpDecoder: decoder,
            promise: promise, configure: configure))
    }
}
