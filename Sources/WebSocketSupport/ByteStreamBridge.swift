import NIOCore
import NIOWebSocket

/// Joins a plain TCP connection (a native VNC viewer) to a websocket (the proxy): bytes from the viewer
/// go out as binary frames, data frames come back as bytes. Each side stops being read while the other
/// cannot take more, so a slow side never makes the bridge buffer without bound.
public enum ByteStreamBridge {
    /// Installs the two halves; both channels must share an event loop and the websocket must be upgraded.
    public static func join(stream: Channel, webSocket: Channel, role: WebSocketRole = .client) throws {
        let streamHalf = StreamHalf()
        let webSocketHalf = WebSocketHalf(role: role)
        streamHalf.partner = webSocketHalf
        webSocketHalf.partner = streamHalf
        try stream.pipeline.syncOperations.addHandler(streamHalf)
        try webSocket.pipeline.syncOperations.addHandler(webSocketHalf)
        stream.read()
        webSocket.read()
    }

    /// What the two halves need from each other.
    fileprivate class Half {
        weak var partnerHalf: Half?
        var context: ChannelHandlerContext?
        var readPending = false

        var isWritable: Bool { self.context?.channel.isWritable ?? false }

        func holdOrRead(_ context: ChannelHandlerContext) {
            if self.partnerHalf?.isWritable ?? false {
                context.read()
            } else {
                self.readPending = true
            }
        }

        func resumeReading() {
            guard self.readPending, let context = self.context else { return }
            self.readPending = false
            context.read()
        }

        func close() {
            self.context?.close(promise: nil)
        }

        // The channel events both halves handle alike; the subclasses inherit these as their
        // ChannelHandler implementations.
        func handlerAdded(context: ChannelHandlerContext) { self.context = context }
        func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

        func channelReadComplete(context: ChannelHandlerContext) {
            self.partnerHalf?.context?.flush()
            context.fireChannelReadComplete()
        }

        func read(context: ChannelHandlerContext) { self.holdOrRead(context) }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            if context.channel.isWritable { self.partnerHalf?.resumeReading() }
            context.fireChannelWritabilityChanged()
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }

    fileprivate final class StreamHalf: Half, ChannelDuplexHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        var partner: WebSocketHalf? {
            get { self.partnerHalf as? WebSocketHalf }
            set { self.partnerHalf = newValue }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            self.partner?.send(self.unwrapInboundIn(data))
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.partner?.sendClose()
            context.fireChannelInactive()
        }

        func write(_ bytes: ByteBuffer) {
            self.context?.write(self.wrapOutboundOut(bytes), promise: nil)
        }
    }

    fileprivate final class WebSocketHalf: Half, ChannelDuplexHandler {
        typealias InboundIn = WebSocketFrame
        typealias OutboundIn = WebSocketFrame
        typealias OutboundOut = WebSocketFrame

        let role: WebSocketRole
        private var closeSent = false

        init(role: WebSocketRole) { self.role = role }

        var partner: StreamHalf? {
            get { self.partnerHalf as? StreamHalf }
            set { self.partnerHalf = newValue }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = self.unwrapInboundIn(data)
            switch frame.opcode {
            case .binary, .text, .continuation:
                self.partner?.write(frame.payload)
            case .ping:
                context.writeAndFlush(self.wrapOutboundOut(.outgoing(.pong, data: frame.payload, role: self.role)),
                                      promise: nil)
            case .connectionClose:
                // Echo once, then end both connections: the viewer sees its TCP connection close.
                if !self.closeSent {
                    self.closeSent = true
                    context.writeAndFlush(self.wrapOutboundOut(.outgoing(.connectionClose, data: frame.payload, role: self.role)),
                                          promise: nil)
                }
                context.close(promise: nil)
            default:
                break
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.partner?.close()
            context.fireChannelInactive()
        }

        func send(_ bytes: ByteBuffer) {
            guard !self.closeSent else { return }
            self.context?.write(self.wrapOutboundOut(.outgoing(.binary, data: bytes, role: self.role)), promise: nil)
        }

        func sendClose() {
            guard !self.closeSent, let context = self.context else { return }
            self.closeSent = true
            let frame = WebSocketFrame.close(code: .normalClosure, reason: "viewer disconnected", role: self.role,
                                             allocator: context.channel.allocator)
            let channel = context.channel
            context.writeAndFlush(self.wrapOutboundOut(frame)).whenComplete { _ in
                // Give the proxy a moment to echo the close, but never wait for long.
                channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
            }
        }
    }
}

@available(*, unavailable)
extension ByteStreamBridge.Half: Sendable {}
