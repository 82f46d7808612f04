import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Reads one HTTP request, lets an `UpgradeResponder` decide on it, then either answers and closes,
/// or completes the RFC 6455 handshake and hands the channel to websocket handlers.
///
/// It does not read further while a decision is pending: a proxy dials its upstream before it answers,
/// and a client must not be able to pile bytes into the proxy meanwhile.
public final class ServerUpgradeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundIn = Never
    public typealias OutboundOut = HTTPServerResponsePart

    public struct Limits: Sendable {
        /// How long a client may take to send its complete request.
        public var requestTimeout: TimeAmount
        /// Request bodies are not expected; this much is discarded before the request is refused.
        public var maxBodySize: Int
        /// Everything a client may send before it is answered: request line, headers and body.
        public var maxRequestSize: Int
        public var maxFrameSize: Int

        public init(
            requestTimeout: TimeAmount = .seconds(10),
            maxBodySize: Int = 16 * 1024,
            maxRequestSize: Int = 64 * 1024,
            maxFrameSize: Int
        ) {
            self.requestTimeout = requestTimeout
            self.maxBodySize = maxBodySize
            self.maxRequestSize = maxRequestSize
            self.maxFrameSize = maxFrameSize
        }
    }

    private enum State {
        case awaitingHead
        case awaitingEnd(IncomingRequest)
        case deciding
        case answering
        case upgraded
    }

    private let responder: any UpgradeResponder
    private let limits: Limits
    private let httpDecoder: RemovableChannelHandler
    private let httpEncoder: RemovableChannelHandler
    private let sizeLimiter: RemovableChannelHandler?
    private var state = State.awaitingHead
    private var bodyBytes = 0
    private var readPending = false
    private var requestTimeout: Scheduled<Void>?
    private var answerDeadline: Scheduled<Void>?

    /// - Parameters: httpDecoder, httpEncoder: removed once the connection is upgraded.
    public init(
        responder: any UpgradeResponder,
        limits: Limits,
        httpDecoder: RemovableChannelHandler,
        httpEncoder: RemovableChannelHandler,
        sizeLimiter: RemovableChannelHandler? = nil
    ) {
        self.responder = responder
        self.limits = limits
        self.httpDecoder = httpDecoder
        self.httpEncoder = httpEncoder
        self.sizeLimiter = sizeLimiter
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.startRequestTimer(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        self.startRequestTimer(context: context)
        context.fireChannelActive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.requestTimeout?.cancel()
        self.answerDeadline?.cancel()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        self.requestTimeout?.cancel()
        self.answerDeadline?.cancel()
        switch self.state {
        case .awaitingHead, .awaitingEnd:
            self.state = .answering
            self.responder.requestFinished(nil, status: .requestTimeout)
        case .deciding, .answering, .upgraded:
            break
        }
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (self.unwrapInboundIn(data), self.state) {
        case (.head(let head), .awaitingHead):
            let key = Self.webSocketKey(of: head)
            if let failure = key.failure {
                self.answer(context: context, request: nil, self.responder.protocolError(
                    status: failure.status, reason: failure.reason, allocator: context.channel.allocator))
                return
            }
            self.state = .awaitingEnd(IncomingRequest(
                head: head, webSocketKey: key.value, remoteAddress: context.channel.remoteAddress))
        case (.body(let body), .awaitingEnd):
            self.bodyBytes += body.readableBytes
            if self.bodyBytes > self.limits.maxBodySize {
                self.answer(context: context, request: nil, self.responder.protocolError(
                    status: .payloadTooLarge, reason: "request body too large", allocator: context.channel.allocator))
            }
        case (.end, .awaitingEnd(let request)):
            self.decide(context: context, request: request)
        default:
            // Anything after the first request (pipelining) is ignored: we answer one request per connection.
            break
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        switch self.state {
        case .awaitingHead, .awaitingEnd:
            let status: HTTPResponseStatus
            if let parserError = error as? HTTPParserError, case .headerOverflow = parserError {
                status = .requestHeaderFieldsTooLarge
            } else {
                status = .badRequest
            }
            self.answer(context: context, request: nil, self.responder.protocolError(
                status: status, reason: "malformed HTTP request", allocator: context.channel.allocator))
        case .deciding, .answering:
            context.close(promise: nil)
        case .upgraded:
            context.fireErrorCaught(error)
        }
    }

    public func read(context: ChannelHandlerContext) {
        switch self.state {
        case .deciding, .answering:
            self.readPending = true
        case .awaitingHead, .awaitingEnd, .upgraded:
            context.read()
        }
    }

    // MARK: - Deciding

    private func startRequestTimer(context: ChannelHandlerContext) {
        guard self.requestTimeout == nil else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.requestTimeout = context.eventLoop.scheduleTask(in: self.limits.requestTimeout) {
            let (handler, context) = loopBound.value
            switch handler.state {
            case .awaitingHead, .awaitingEnd:
                handler.answer(context: context, request: nil, handler.responder.protocolError(
                    status: .requestTimeout, reason: "request not received in time", allocator: context.channel.allocator))
            case .deciding, .answering, .upgraded:
                break
            }
        }
    }

    private func decide(context: ChannelHandlerContext, request: IncomingRequest) {
        self.requestTimeout?.cancel()
        self.state = .deciding
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.responder.decide(request, channel: context.channel)
            .hop(to: context.eventLoop)
            .whenComplete { result in
                let (handler, context) = loopBound.value
                switch result {
                case .success(let decision):
                    handler.answer(context: context, request: request, decision)
                case .failure:
                    handler.answer(context: context, request: request, handler.responder.protocolError(
                        status: .internalServerError, reason: "internal error", allocator: context.channel.allocator))
                }
            }
    }

    private func answer(context: ChannelHandlerContext, request: IncomingRequest?, _ decision: UpgradeDecision) {
        guard context.channel.isActive else {
            self.state = .answering
            if case .upgrade = decision {
                self.responder.requestFinished(request, status: .gone)
            }
            return
        }
        switch decision {
        case .respond(let status, var headers, let body):
            self.state = .answering
            self.requestTimeout?.cancel()
            // A HEAD answer has the GET's headers and no body (RFC 9110 §9.3.2): a responder that sets
            // Content-Length itself states the length of the body it left out.
            let isHead = request?.head.method == .HEAD
            if !(isHead && headers.contains(name: "content-length")) {
                headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
            }
            headers.replaceOrAdd(name: "connection", value: "close")
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            if !isHead && status.mayHaveResponseBody {
                context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            }
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
            // The answer may never be written out: a client that does not read it, or a TLS handshake
            // that never finished (the TLS handler holds our bytes until it does). The connection is
            // closed anyway after one more request deadline.
            let channel = context.channel
            self.answerDeadline = context.eventLoop.scheduleTask(in: self.limits.requestTimeout) { channel.close(promise: nil) }
            self.responder.requestFinished(request, status: status)
        case .upgrade(var headers, let configure):
            guard let key = request?.webSocketKey else {
                preconditionFailure("an UpgradeResponder may only upgrade a websocket request")
            }
            headers.replaceOrAdd(name: "upgrade", value: "websocket")
            headers.replaceOrAdd(name: "connection", value: "Upgrade")
            headers.replaceOrAdd(name: "sec-websocket-accept", value: WebSocketKeys.acceptValue(forClientKey: key))
            context.writeAndFlush(self.wrapOutboundOut(.head(HTTPResponseHead(
                version: .http1_1, status: .switchingProtocols, headers: headers))), promise: nil)
            do {
                try self.switchToWebSocket(context: context, configure: configure)
            } catch {
                context.close(promise: nil)
            }
        }
    }

    /// Replaces HTTP by the websocket codec. The encoder leaves first, so the new handlers can write
    /// frames at once; the decoder leaves last, because it forwards the bytes it read past the request.
    private func switchToWebSocket(context: ChannelHandlerContext, configure: (Channel) throws -> Void) throws {
        self.state = .upgraded
        let pipeline = context.pipeline.syncOperations
        if let sizeLimiter = self.sizeLimiter { pipeline.removeHandler(sizeLimiter, promise: nil) }
        pipeline.removeHandler(self.httpEncoder, promise: nil)
        try pipeline.addWebSocketCodec(maxFrameSize: self.limits.maxFrameSize)
        try configure(context.channel)
        pipeline.removeDecoderForwardingLeftovers(self.httpDecoder, channel: context.channel)
        let readPending = self.readPending
        pipeline.removeHandler(context: context, promise: nil)
        if readPending { context.channel.read() }
    }

    // MARK: - Handshake validation

    private struct KeyCheck {
        var value: String?
        var failure: (status: HTTPResponseStatus, reason: String)?
    }

    /// A request that asks for websocket must carry a valid key and version 13; any other request is plain HTTP.
    private static func webSocketKey(of head: HTTPRequestHead) -> KeyCheck {
        let upgrade = head.headers[canonicalForm: "upgrade"].map { $0.lowercased() }
        guard upgrade.contains("websocket") else { return KeyCheck() }
        guard head.method == .GET else {
            return KeyCheck(failure: (.methodNotAllowed, "websocket upgrade requires GET"))
        }
        let connection = head.headers[canonicalForm: "connection"].map { $0.lowercased() }
        guard connection.contains("upgrade") else {
            return KeyCheck(failure: (.badRequest, "Connection header must contain Upgrade"))
        }
        let keys = head.headers["sec-websocket-key"]
        guard keys.count == 1, let key = keys.first, WebSocketKeys.isValidClientKey(key) else {
            return KeyCheck(failure: (.badRequest, "missing or invalid Sec-WebSocket-Key"))
        }
        guard head.headers["sec-websocket-version"] == ["13"] else {
            return KeyCheck(failure: (.upgradeRequired, "unsupported Sec-WebSocket-Version; use 13"))
        }
        return KeyCheck(value: key)
    }
}

@available(*, unavailable)
extension ServerUpgradeHandler: Sendable {}

extension ChannelPipeline.SynchronousOperations {
    /// Adds an HTTP/1.1 server that answers one request per connection through `responder`.
    public func addUpgradableHTTPServer(responder: any UpgradeResponder, limits: ServerUpgradeHandler.Limits) throws {
        let sizeLimiter = RequestSizeLimiter(limit: limits.maxRequestSize)
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        let encoder = HTTPResponseEncoder()
        try self.addHandler(sizeLimiter)
        try self.addHandler(decoder)
        try self.addHandler(encoder)
        try self.addHandler(ServerUpgradeHandler(
            responder: responder, limits: limits, httpDecoder: decoder, httpEncoder: encoder, sizeLimiter: sizeLimiter))
    }
}
