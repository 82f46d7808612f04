import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// A websocket client connection in async form, for tools and tests: send data, read bytes or frames.
///
/// Payloads are treated as a byte stream, like RFB over KubeVirt: `read(count:)` gathers bytes across frames.
/// Pings are answered and pongs skipped. Use it from one task.
public final class WebSocketClientSession {
    public let subprotocol: String?
    private var inbound: NIOAsyncChannelInboundStream<WebSocketFrame>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>
    private var buffered = ByteBuffer()

    /// The close frame the server sent, once one has been read.
    public private(set) var closeCode: WebSocketErrorCode?
    public private(set) var closeReason: String?

    init(subprotocol: String?, inbound: NIOAsyncChannelInboundStream<WebSocketFrame>, outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>) {
        self.subprotocol = subprotocol
        self.inbound = inbound.makeAsyncIterator()
        self.outbound = outbound
    }

    /// Sends `bytes` as one masked binary frame.
    public func send(_ bytes: some Sequence<UInt8>) async throws {
        try await self.send(frame: .outgoing(.binary, data: ByteBuffer(bytes: Array(bytes)), role: .client))
    }

    /// Sends any frame as it is; callers that break the protocol on purpose use this.
    public func send(frame: WebSocketFrame) async throws {
        try await self.outbound.write(frame)
    }

    /// Starts the close handshake.
    public func close(code: WebSocketErrorCode = .normalClosure, reason: String = "") async throws {
        try await self.send(frame: .close(code: code, reason: reason, role: .client, allocator: ByteBufferAllocator()))
    }

    /// The next data or close frame; nil when the connection ended.
    public func nextFrame() async throws -> WebSocketFrame? {
        while let frame = try await self.inbound.next() {
            switch frame.opcode {
            case .ping:
                // Best effort: when the server is already closing, its close frame is still to be read.
                try? await self.send(frame: .outgoing(.pong, data: frame.payload, role: .client))
            case .pong:
                continue
            case .connectionClose:
                var payload = frame.payload
                self.closeCode = payload.readWebSocketErrorCode()
                self.closeReason = payload.readString(length: payload.readableBytes)
                return frame
            default:
                return frame
            }
        }
        return nil
    }

    /// Exactly `count` payload bytes, gathered across frames; throws if the connection closes first.
    public func read(count: Int) async throws -> [UInt8] {
        while self.buffered.readableBytes < count {
            guard let frame = try await self.nextFrame(), frame.opcode != .connectionClose else {
                throw WebSocketClientError.closedBeforeData(received: self.buffered.readableBytes, code: self.closeCode)
            }
            var payload = frame.payload
            self.buffered.writeBuffer(&payload)
        }
        let bytes = self.buffered.readBytes(length: count)!
        // Keep the buffer from growing with everything ever read.
        if self.buffered.readerIndex > 1 << 16 { self.buffered.discardReadBytes() }
        return bytes
    }

    /// Reads until the peer's close frame (or the end of the connection) and returns its code.
    public func readUntilClose() async throws -> WebSocketErrorCode? {
        while let frame = try await self.nextFrame() {
            if frame.opcode == .connectionClose { return self.closeCode }
        }
        return self.closeCode
    }
}

public enum WebSocketClientError: Error, Equatable {
    case closedBeforeData(received: Int, code: WebSocketErrorCode?)
}

/// Opens websocket client connections.
public enum WebSocketClient {
    /// Connects, completes the handshake, runs `body`, then closes the connection.
    ///
    /// - Parameter tls: a client TLS context for `wss://`; nil for `ws://`.
    public static func withConnection<Result>(
        host: String,
        port: Int,
        path: String,
        tls: NIOSSLContext? = nil,
        serverHostname: String? = nil,
        subprotocols: [String] = [],
        headers: HTTPHeaders = [:],
        maxFrameSize: Int = 1 << 24,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        _ body: (WebSocketClientSession) async throws -> Result
    ) async throws -> Result {
        let upgraded = group.next().makePromise(of: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>.self)
        let handshake = upgraded.futureResult.eventLoop.makePromise(of: String?.self)
        let request = ClientUpgradeRequest(
            host: "\(host.contains(":") ? "[\(host)]" : host):\(port)", path: path, subprotocols: subprotocols, headers: headers)
        let connect = ClientBootstrap(group: upgraded.futureResult.eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: serverHostname))
                    }
                    try channel.pipeline.syncOperations.addWebSocketClientUpgrade(
                        request: request, maxFrameSize: maxFrameSize, promise: handshake
                    ) { channel in
                        upgraded.succeed(try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                    }
                }
            }
            .connect(host: host, port: port)
        connect.whenFailure { error in
            handshake.fail(error)
        }
        handshake.futureResult.whenFailure { upgraded.fail($0) }
        let asyncChannel = try await upgraded.futureResult.get()
        let subprotocol = try await handshake.futureResult.get()
        return try await asyncChannel.executeThenClose { inbound, outbound in
            try await body(WebSocketClientSession(subprotocol: subprotocol, inbound: inbound, outbound: outbound))
        }
    }
}
