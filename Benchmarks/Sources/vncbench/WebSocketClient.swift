import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOWebSocket
import VNCProxy

/// Where the load generator's websocket clients connect, and how their paths are made.
///
/// - `proxy`: `ws://HOST:PORT/TOKEN/VM` with a token minted per VM (vnc-proxy, the Python proxy, nginx).
/// - `direct`: `wss://HOST:PORT/apis/.../VM/vnc` with the bearer token and the CA (the simulator itself).
struct Target: Sendable {
    enum Kind: String, Sendable { case proxy, direct }

    let kind: Kind
    let host: String
    let port: Int
    let tlsContext: NIOSSLContext?
    let namespace: String
    let bearer: String?
    let signer: TokenSigner?
    /// Offer `plain.kubevirt.io` (direct) or nothing (proxies; noVNC >= 1.2 offers none).
    let subprotocol: String?

    init(kind: Kind, url: String, namespace: String, secret: String?, caFile: String?, tokenFile: String?) throws {
        self.kind = kind
        guard let components = URLComponents(string: url), let scheme = components.scheme,
              let host = components.host, let port = components.port else {
            throw BenchError("bad --url \(url): want ws://HOST:PORT or wss://HOST:PORT")
        }
        self.host = host
        self.port = port
        self.namespace = namespace
        if scheme == "wss" {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let caFile { tls.trustRoots = .file(caFile) }
            self.tlsContext = try NIOSSLContext(configuration: tls)
        } else {
            self.tlsContext = nil
        }
        self.bearer = try tokenFile.map {
            try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        self.signer = secret.map { TokenSigner(secret: $0) }
        self.subprotocol = kind == .direct ? "plain.kubevirt.io" : nil
        if kind == .proxy && self.signer == nil { throw BenchError("--target proxy needs --secret") }
    }

    /// The request path for one VM; tokens are minted here, so do it before the measured window.
    func path(vm: String) throws -> String {
        switch self.kind {
        case .direct:
            return "/apis/subresources.kubevirt.io/v1/namespaces/\(self.namespace)/virtualmachineinstances/\(vm)/vnc"
        case .proxy:
            let token = try self.signer!.sign(namespace: self.namespace, vmNames: [vm], lifetime: 6 * 3600)
            return "/\(token)/\(vm)"
        }
    }

    /// The upgrade request for a path, ready to write; the key is random per request.
    func request(path: String) -> String {
        var keyBytes = [UInt8](repeating: 0, count: 16)
        for i in keyBytes.indices { keyBytes[i] = UInt8.random(in: 0...255) }
        var text = "GET \(path) HTTP/1.1\r\nHost: \(self.host):\(self.port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        text += "Sec-WebSocket-Key: \(Data(keyBytes).base64EncodedString())\r\nSec-WebSocket-Version: 13\r\n"
        if let subprotocol { text += "Sec-WebSocket-Protocol: \(subprotocol)\r\n" }
        if self.kind == .direct, let bearer { text += "Authorization: Bearer \(bearer)\r\n" }
        return text + "\r\n"
    }

    /// Connects, upgrades, then puts `makeHandler()`'s handler on the websocket. The future completes
    /// with the channel once the 101 has been read (or fails with the status line).
    func open(path: String, on eventLoop: EventLoop,
              makeHandler: @escaping @Sendable () -> ScenarioHandler) -> EventLoopFuture<Channel> {
        let upgraded = eventLoop.makePromise(of: Void.self)
        let request = self.request(path: path)
        let tlsContext = self.tlsContext
        let connect = ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 512 * 1024, high: 1024 * 1024))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tlsContext {
                        try sync.addHandler(NIOSSLClientHandler(context: tlsContext, serverHostname: nil))
                    }
                    try sync.addHandler(RawUpgradeHandler(request: request, promise: upgraded, makeHandler: makeHandler))
                }
            }
            .connect(host: self.host, port: self.port)
        connect.whenFailure { upgraded.fail($0) }
        return connect.flatMap { channel in
            upgraded.futureResult.map { channel }.flatMapErrorThrowing { error in
                channel.close(promise: nil)
                throw error
            }
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Writes a hand-made upgrade request, waits for `101`, then swaps itself for the frame codec and
/// the scenario's handler, passing on any bytes that came with the response.
final class RawUpgradeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: String
    private let promise: EventLoopPromise<Void>
    private let makeHandler: () -> ScenarioHandler
    private var buffer: ByteBuffer?
    private var done = false

    init(request: String, promise: EventLoopPromise<Void>, makeHandler: @escaping () -> ScenarioHandler) {
        self.request = request
        self.promise = promise
        self.makeHandler = makeHandler
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(string: self.request)), promise: nil)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.finish(.failure(BenchError("connection closed before 101")))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.finish(.failure(error))
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        if self.buffer == nil { self.buffer = incoming } else { self.buffer!.writeBuffer(&incoming) }
        guard var buffer = self.buffer, let end = Self.headerEnd(buffer) else {
            if (self.buffer?.readableBytes ?? 0) > 64 * 1024 {
                self.finish(.failure(BenchError("response head too large")))
                context.close(promise: nil)
            }
            return
        }
        let head = buffer.readString(length: end) ?? ""
        let statusLine = head.prefix { $0 != "\r" }
        guard statusLine.hasPrefix("HTTP/1.1 101") else {
            self.finish(.failure(BenchError("upgrade refused: \(statusLine)")))
            context.close(promise: nil)
            return
        }
        self.buffer = nil
        do {
            let sync = context.pipeline.syncOperations
            let app = self.makeHandler()
            // Pipeline after this: decoder, encoder, app (each added right after this handler).
            try sync.addHandler(app, position: .after(self))
            try sync.addHandler(FastClientFrameEncoder(), position: .after(self))
            try sync.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 16 << 20)), position: .after(self))
            app.begin()
            if buffer.readableBytes > 0 { context.fireChannelRead(self.wrapInboundOut(buffer)) }
            sync.removeHandler(context: context, promise: nil)
            self.finish(.success(()))
        } catch {
            self.finish(.failure(error))
            context.close(promise: nil)
        }
    }

    private func finish(_ result: Result<Void, Error>) {
        guard !self.done else { return }
        self.done = true
        self.promise.completeWith(result)
    }

    /// Offset just past `\r\n\r\n`, if the head is complete.
    private static func headerEnd(_ buffer: ByteBuffer) -> Int? {
        let view = buffer.readableBytesView
        guard view.count >= 4 else { return nil }
        var index = view.startIndex
        let last = view.endIndex - 3
        while index < last {
            if view[index] == 13, view[index + 1] == 10, view[index + 2] == 13, view[index + 3] == 10 {
                return index - view.startIndex + 4
            }
            index += 1
        }
        return nil
    }
}

/// The common part of every scenario's client: answers pings, completes the close handshake,
/// and hands data payloads to `received(_:context:)`. Confined to its channel's event loop.
class ScenarioHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private(set) var context: ChannelHandlerContext?
    private var closeSent = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// Called once the codec is in place.
    func begin() {
        if let context = self.context { self.started(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// The websocket is open: start sending, if the scenario sends.
    func started(context: ChannelHandlerContext) {}

    func received(_ payload: ByteBuffer, context: ChannelHandlerContext) {}

    /// The socket takes writes again.
    func writable(context: ChannelHandlerContext) {}

    /// The connection is gone.
    func ended(context: ChannelHandlerContext) {}

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.writable(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.ended(context: context)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .binary, .text, .continuation:
            self.received(frame.data, context: context)
        case .ping:
            context.writeAndFlush(self.wrapOutboundOut(
                WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.data)), promise: nil)
        case .connectionClose:
            if self.closeSent {
                context.close(promise: nil)
            } else {
                self.closeSent = true
                var payload = frame.data
                let code = payload.readInteger(as: UInt16.self) ?? 1000
                var echo = context.channel.allocator.buffer(capacity: 2)
                echo.writeInteger(code)
                let channel = context.channel
                context.writeAndFlush(self.wrapOutboundOut(
                    WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: echo))).whenComplete { _ in
                    channel.close(promise: nil)
                }
            }
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// Sends a normal close and drops the connection if the answer takes longer than `grace`.
    func sendClose(grace: TimeAmount = .seconds(2)) {
        guard let context = self.context, !self.closeSent else { return }
        self.closeSent = true
        var payload = context.channel.allocator.buffer(capacity: 2)
        payload.writeInteger(UInt16(1000))
        context.writeAndFlush(self.wrapOutboundOut(
            WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: payload)), promise: nil)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: grace) { channel.close(promise: nil) }
    }
}

/// The client side's frame encoder. NIO's `WebSocketFrameEncoder` masks one byte at a time
/// (`ByteBuffer.webSocketMask`), which caps a sender at a few hundred MB/s; this one masks eight bytes
/// at a time, so the load generator's upload is not limited by it.
final class FastClientFrameEncoder: ChannelOutboundHandler {
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = ByteBuffer

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = self.unwrapOutboundIn(data)
        let key = frame.maskKey ?? .random()
        let length = frame.data.readableBytes
        var out = context.channel.allocator.buffer(capacity: 14 + length)
        out.writeInteger(UInt8(frame.fin ? 0x80 : 0) | UInt8(webSocketOpcode: frame.opcode))
        if length < 126 {
            out.writeInteger(UInt8(0x80 | length))
        } else if length <= Int(UInt16.max) {
            out.writeInteger(UInt8(0x80 | 126))
            out.writeInteger(UInt16(length))
        } else {
            out.writeInteger(UInt8(0x80 | 127))
            out.writeInteger(UInt64(length))
        }
        out.writeBytes([key[0], key[1], key[2], key[3]])
        let start = out.writerIndex
        out.writeImmutableBuffer(frame.data)
        let word32 = UInt32(key[0]) | UInt32(key[1]) << 8 | UInt32(key[2]) << 16 | UInt32(key[3]) << 24
        let word = UInt64(word32) | UInt64(word32) << 32
        let offset = start - out.readerIndex
        out.withUnsafeMutableReadableBytes { bytes in
            var index = offset
            let end = bytes.count
            while index + 8 <= end {
                let value = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                bytes.storeBytes(of: value ^ word, toByteOffset: index, as: UInt64.self)
                index += 8
            }
            var k = 0
            while index < end {
                bytes[index] ^= key[k]
                index += 1
                k += 1
            }
        }
        context.write(self.wrapOutboundOut(out), promise: promise)
    }
}
