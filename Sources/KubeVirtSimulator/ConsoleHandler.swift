import NIOCore
import NIOPosix
import NIOWebSocket
import WebSocketSupport

/// The VMI's end of a VNC websocket, as virt-handler runs it: binary frames carry the RFB stream
/// (split into chunks of about 10 KiB), text frames are dropped, pings are answered.
final class ConsoleHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private enum Backend {
        case rfb(RFBServer)
        case echo
        case source(ByteBuffer)
        case sink
        case unread
        case resetOnInput
        /// A TCP connection to a real VNC server; nil until it is connected.
        case tcp(Channel?)
    }

    private var backend: Backend
    private let target: ConsoleBackend
    private let chunkSize: Int
    private var context: ChannelHandlerContext?
    private var readPending = false
    /// Viewer bytes that arrived before the TCP backend connected; reads stop meanwhile, so it stays small.
    private var parked: [ByteBuffer] = []

    init(backend: ConsoleBackend, chunkSize: Int, onKeyEvent: @escaping (UInt32, Bool) -> Void) {
        self.target = backend
        self.chunkSize = chunkSize
        switch backend {
        case .builtInRFB(let width, let height, let name):
            self.backend = .rfb(RFBServer(width: width, height: height, name: name, onKeyEvent: onKeyEvent))
        case .echo:
            self.backend = .echo
        case .source:
            self.backend = .source(ByteBuffer(repeating: 0x5a, count: chunkSize))
        case .sink:
            self.backend = .sink
        case .unread:
            self.backend = .unread
        case .resetOnInput:
            self.backend = .resetOnInput
        case .tcp:
            self.backend = .tcp(nil)
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        switch (self.backend, self.target) {
        case (.rfb(let server), _):
            self.send(server.greeting())
            context.flush()
        case (.tcp, .tcp(let host, let port)):
            self.connectBackend(host: host, port: port, context: context)
        case (.source, _):
            self.produce()
        default:
            break
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .tcp(let channel?) = self.backend { channel.close(promise: nil) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        guard frame.maskKey != nil else {
            return self.close(code: .protocolError, reason: "client frames must be masked", context: context)
        }
        switch frame.opcode {
        case .binary, .continuation:
            self.viewerSent(frame.payload, context: context)
        case .text:
            break  // virt-handler ignores text messages
        case .ping:
            context.writeAndFlush(self.wrapOutboundOut(.outgoing(.pong, data: frame.payload, role: .server)), promise: nil)
        case .connectionClose:
            var payload = frame.payload
            let code = payload.readWebSocketErrorCode() ?? .normalClosure
            self.close(code: code, reason: "", context: context)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        if case .tcp(let channel?) = self.backend { channel.flush() }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if self.canAcceptViewerBytes(context: context) {
            context.read()
        } else {
            self.readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.produce()
            self.resumeReading()
            if case .tcp(let channel?) = self.backend { channel.read() }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: - Data

    private func viewerSent(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        switch self.backend {
        case .rfb(let server):
            do {
                let reply = try server.receive(bytes)
                if reply.readableBytes > 0 { self.send(reply) }
            } catch {
                self.close(code: .protocolError, reason: "RFB error: \(error)", context: context)
            }
        case .echo:
            self.send(bytes)
        case .source, .sink, .unread:
            break
        case .resetOnInput:
            // SO_LINGER with a zero timeout turns close() into a reset.
            let channel = context.channel
            guard let socket = channel as? SocketOptionProvider else { return channel.close(promise: nil) }
            socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
        case .tcp(let channel?):
            channel.write(bytes, promise: nil)
        case .tcp(nil):
            self.parked.append(bytes)
        }
    }

    /// Sends VM output to the viewer in virt-handler's chunk size.
    func send(_ bytes: ByteBuffer) {
        guard let context = self.context else { return }
        var bytes = bytes
        while bytes.readableBytes > 0, let chunk = bytes.readSlice(length: min(self.chunkSize, bytes.readableBytes)) {
            context.write(self.wrapOutboundOut(.outgoing(.binary, data: chunk, role: .server)), promise: nil)
        }
    }

    func flush() {
        self.context?.flush()
    }

    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    private func canAcceptViewerBytes(context: ChannelHandlerContext) -> Bool {
        switch self.backend {
        case .tcp(nil): return false
        case .tcp(let channel?): return channel.isWritable
        case .rfb, .echo: return context.channel.isWritable
        case .source, .sink, .resetOnInput: return true
        case .unread: return false
        }
    }

    func resumeReading() {
        guard self.readPending, let context = self.context, self.canAcceptViewerBytes(context: context) else { return }
        self.readPending = false
        context.read()
    }

    private func close(code: WebSocketErrorCode, reason: String, context: ChannelHandlerContext) {
        let frame = WebSocketFrame.close(code: code, reason: reason, role: .server, allocator: context.channel.allocator)
        context.writeAndFlush(self.wrapOutboundOut(frame)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// A `.source` console writes while the channel is writable, then waits for writability.
    /// Writes are flushed in batches: TLS holds unflushed writes itself, so the channel's writability
    /// only reflects what has been flushed. A batch per event loop turn keeps the loop responsive.
    private func produce() {
        guard case .source(let chunk) = self.backend, let context = self.context, context.channel.isWritable else { return }
        for _ in 0..<32 {
            context.write(self.wrapOutboundOut(.outgoing(.binary, data: chunk, role: .server)), promise: nil)
        }
        context.flush()
        if context.channel.isWritable {
            context.eventLoop.assumeIsolated().execute { self.produce() }
        }
    }

    // MARK: - TCP backend

    private func connectBackend(host: String, port: Int, context: ChannelHandlerContext) {
        let console = NIOLoopBound(self, eventLoop: context.eventLoop)
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.autoRead, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TCPBackendHandler(console: console.value))
                }
            }
            .connect(host: host, port: port)
            .whenComplete { result in
                let console = console.value
                guard let context = console.context else {
                    if case .success(let channel) = result { channel.close(promise: nil) }
                    return
                }
                switch result {
                case .success(let channel):
                    console.backend = .tcp(channel)
                    for bytes in console.parked { channel.write(bytes, promise: nil) }
                    console.parked = []
                    channel.flush()
                    console.resumeReading()
                case .failure:
                    console.close(code: .unexpectedServerError, reason: "VNC server unreachable", context: context)
                }
            }
    }
}

/// The TCP side of a `.tcp` console: VNC server bytes go to the viewer; reads stop while the viewer is slow.
private final class TCPBackendHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let console: ConsoleHandler

    init(console: ConsoleHandler) {
        self.console = console
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.console.send(self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.console.flush()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if self.console.isWritable { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.console.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The VNC server went away: virt-handler drops the websocket without a close frame.
        self.console.dropViewer()
        context.fireChannelInactive()
    }
}

extension ConsoleHandler {
    func dropViewer() {
        self.context?.close(promise: nil)
    }
}

@available(*, unavailable)
extension ConsoleHandler: Sendable {}
