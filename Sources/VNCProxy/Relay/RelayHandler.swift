import NIOCore
import NIOWebSocket
import WebSocketSupport

/// One half of a session: sits on a websocket channel (the viewer's or the Kubernetes API's) and
/// relays its data to the partner half on the other channel, which shares its event loop.
///
/// The payload is RFB, a byte stream, so every data frame (text, binary, continuation) is forwarded
/// as one complete binary frame: nothing is reassembled and no frame is held for a whole message.
/// Backpressure: while the partner's channel is not writable this channel is not read.
final class RelayHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// Which peer this handler's channel talks to.
    enum Peer: String {
        case client
        case upstream

        /// Toward the viewer we are the server; toward the API server we are the client and mask.
        var ourRole: WebSocketRole { self == .client ? .server : .client }
    }

    private enum CloseState {
        case open
        /// We sent a close frame and wait for the echo (or the deadline).
        case closeSent
        case closed
    }

    let peer: Peer
    let session: ProxySession
    private let closeTimeout: TimeAmount
    private var partner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var closeState = CloseState.open
    private var readPending = false
    private var needsFlush = false
    private var inFragmentedMessage = false
    /// Data that arrived before the partner was linked (the VNC server speaks first). It is bounded:
    /// reads stop until the partner is there, so it holds at most what one read decoded.
    private var parked: [ByteBuffer] = []
    private var closeDeadline: Scheduled<Void>?
    /// A keepalive ping is out and its pong has not come back.
    private(set) var awaitingPong = false

    init(peer: Peer, session: ProxySession, closeTimeout: TimeAmount) {
        self.peer = peer
        self.session = session
        self.closeTimeout = closeTimeout
    }

    /// Joins the two halves of a session; both must be in their pipelines on the same event loop.
    static func link(_ client: RelayHandler, _ upstream: RelayHandler) {
        client.partner = upstream
        upstream.partner = client
        for handler in [client, upstream] {
            let parked = handler.parked
            handler.parked = []
            for payload in parked { handler.forward(payload) }
            handler.partner?.flushIfNeeded()
            handler.resumeReading()
        }
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.closeDeadline?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.closeState = .closed
        self.closeDeadline?.cancel()
        self.session.noteEnd("\(self.peer.rawValue) connection closed")
        let partner = self.partner
        self.partner = nil
        partner?.partnerWentAway(self.peer)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        if let violation = self.violation(in: frame) {
            return self.fail(code: .protocolError, reason: violation, context: context)
        }
        switch frame.opcode {
        case .binary, .text, .continuation:
            guard self.closeState == .open else { return }
            self.inFragmentedMessage = !frame.fin
            let payload = frame.payload
            guard payload.readableBytes > 0 else { return }
            if self.partner == nil {
                self.parked.append(payload)
            } else {
                self.forward(payload)
            }
        case .ping:
            // A peer that pings but does not read our answers gets no more of them (RFC 6455 §5.5.3
            // allows answering only the latest ping): a ping flood cannot grow our write buffer.
            guard self.closeState == .open, context.channel.isWritable else { return }
            context.writeAndFlush(self.wrapOutboundOut(.outgoing(.pong, data: frame.payload, role: self.peer.ourRole)),
                                  promise: nil)
        case .pong:
            self.awaitingPong = false
        case .connectionClose:
            self.receivedClose(frame, context: context)
        default:
            self.fail(code: .protocolError, reason: "reserved opcode", context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.partner?.flushIfNeeded()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if let partner = self.partner, partner.isWritable {
            context.read()
        } else if self.partner == nil && self.closeState != .open {
            // Closing without a partner: keep reading so the close echo and EOF are seen.
            context.read()
        } else {
            self.readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        switch error {
        case NIOWebSocketError.invalidFrameLength:
            self.fail(code: .messageTooLarge, reason: "frame too large", context: context)
        case NIOWebSocketError.fragmentedControlFrame, NIOWebSocketError.multiByteControlFrameLength:
            self.fail(code: .protocolError, reason: "invalid control frame", context: context)
        default:
            self.session.noteEnd("\(self.peer.rawValue) connection error")
            context.close(promise: nil)
        }
    }

    // MARK: - Relaying

    private var isWritable: Bool {
        self.context?.channel.isWritable ?? false
    }

    private func forward(_ payload: ByteBuffer) {
        guard let partner = self.partner else { return }
        switch self.peer {
        case .client: self.session.relayedToVM(payload.readableBytes)
        case .upstream: self.session.relayedToClient(payload.readableBytes)
        }
        self.session.lastActivity = .now()
        partner.write(payload)
    }

    private func write(_ payload: ByteBuffer) {
        guard self.closeState == .open, let context = self.context else { return }
        context.write(self.wrapOutboundOut(.outgoing(.binary, data: payload, role: self.peer.ourRole)), promise: nil)
        self.needsFlush = true
    }

    private func flushIfNeeded() {
        guard self.needsFlush, let context = self.context else { return }
        self.needsFlush = false
        context.flush()
    }

    private func resumeReading() {
        guard self.readPending, let context = self.context else { return }
        self.readPending = false
        context.read()
    }

    /// RFC 6455 §5.1–5.4: who masks, no extensions were negotiated, fragments come in order.
    private func violation(in frame: WebSocketFrame) -> String? {
        switch (self.peer, frame.maskKey) {
        case (.client, nil): return "client frames must be masked"
        case (.upstream, .some): return "server frames must not be masked"
        default: break
        }
        if frame.rsv1 || frame.rsv2 || frame.rsv3 { return "no extension was negotiated" }
        switch frame.opcode {
        case .continuation where !self.inFragmentedMessage: return "continuation frame without a message"
        case .binary where self.inFragmentedMessage, .text where self.inFragmentedMessage:
            return "new message inside a fragmented one"
        default: return nil
        }
    }

    // MARK: - Closing

    /// The close handshake: answer a close we did not start, forward it to the partner with its code.
    private func receivedClose(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        var payload = frame.payload
        let code: WebSocketErrorCode?
        switch payload.readableBytes {
        case 0:
            code = nil
        case 1:
            return self.fail(code: .protocolError, reason: "invalid close payload", context: context)
        default:
            guard let received = payload.readWebSocketErrorCode(), CloseCode.isSendable(received) else {
                return self.fail(code: .protocolError, reason: "invalid close code", context: context)
            }
            code = received
        }
        let reason = payload.readString(length: payload.readableBytes) ?? ""
        switch self.closeState {
        case .closeSent, .closed:
            self.closeState = .closed
            context.close(promise: nil)
        case .open:
            self.closeState = .closed
            self.session.noteEnd("\(self.peer.rawValue) closed with \(code.map { String(CloseCode.number($0)) } ?? "no code")")
            let echo = code.map { WebSocketFrame.close(code: $0, reason: "", role: self.peer.ourRole, allocator: context.channel.allocator) }
                ?? .outgoing(.connectionClose, data: context.channel.allocator.buffer(capacity: 0), role: self.peer.ourRole)
            context.writeAndFlush(self.wrapOutboundOut(echo)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            self.partner?.sendClose(code: code ?? .normalClosure, reason: reason)
        }
    }

    /// Sends a keepalive ping; the supervisor checks for its pong before the next one.
    func sendPing() {
        guard self.closeState == .open, let context = self.context else { return }
        self.awaitingPong = true
        var payload = context.channel.allocator.buffer(capacity: 8)
        payload.writeInteger(UInt64(NIODeadline.now().uptimeNanoseconds))
        context.writeAndFlush(self.wrapOutboundOut(.outgoing(.ping, data: payload, role: self.peer.ourRole)), promise: nil)
    }

    /// Starts a close handshake on this channel; the channel is closed when the echo arrives or the deadline passes.
    func sendClose(code: WebSocketErrorCode, reason: String) {
        guard self.closeState == .open, let context = self.context else { return }
        self.closeState = .closeSent
        let frame = WebSocketFrame.close(code: code, reason: reason, role: self.peer.ourRole, allocator: context.channel.allocator)
        context.writeAndFlush(self.wrapOutboundOut(frame), promise: nil)
        let channel = context.channel
        self.closeDeadline = context.eventLoop.scheduleTask(in: self.closeTimeout) {
            channel.close(promise: nil)
        }
        // We may have been holding reads for the partner; the close echo still has to be read.
        if self.readPending {
            self.readPending = false
            context.read()
        }
    }

    private func partnerWentAway(_ partnerPeer: Peer) {
        let reason = partnerPeer == .upstream ? "VM console connection closed" : "viewer connection closed"
        self.sendClose(code: .goingAway, reason: reason)
    }

    /// Ends the session because this side broke the protocol: it gets `code`, the partner 1001.
    private func fail(code: WebSocketErrorCode, reason: String, context: ChannelHandlerContext) {
        self.session.noteEnd("\(self.peer.rawValue) protocol error: \(reason)")
        self.sendClose(code: code, reason: reason)
        self.closeState = .closed
        let partner = self.partner
        self.partner = nil
        partner?.partnerWentAway(self.peer)
    }
}

@available(*, unavailable)
extension RelayHandler: Sendable {}
