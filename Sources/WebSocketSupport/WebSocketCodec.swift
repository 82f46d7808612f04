import NIOCore
import NIOWebSocket

/// Which end of a websocket this process is; it decides who masks frames (RFC 6455 §5.3).
public enum WebSocketRole: Sendable {
    case server
    case client
}

extension ChannelPipeline.SynchronousOperations {
    /// Adds the frame decoder and encoder that replace HTTP once a handshake has completed.
    ///
    /// The decoder never produces partial frames, so `maxFrameSize` is also the most one frame can
    /// make us buffer.
    public func addWebSocketCodec(maxFrameSize: Int) throws {
        try self.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize)))
        try self.addHandler(MaskingFrameEncoder())
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// Removes an HTTP decoder after an upgrade. `ByteToMessageHandler` finishes its removal on a later
    /// event loop tick and forwards the bytes it read past the HTTP message then, as a read with no
    /// read-complete after it. Handlers that flush on read-complete would sit on those bytes (a VNC
    /// server's greeting), so a read-complete follows them. It starts at the frame decoder: a TLS handler
    /// nearer the head would swallow a read-complete that did not follow a read of its own.
    func removeDecoderForwardingLeftovers(_ decoder: RemovableChannelHandler, channel: Channel) {
        let removed = channel.eventLoop.makePromise(of: Void.self)
        self.removeHandler(decoder, promise: removed)
        removed.futureResult.assumeIsolated().whenComplete { _ in
            let frameDecoder = try? channel.pipeline.syncOperations.context(
                handlerType: ByteToMessageHandler<WebSocketFrameDecoder>.self)
            frameDecoder?.fireChannelReadComplete()
        }
    }
}

extension WebSocketFrame {
    /// A single unfragmented frame carrying `data`, masked when we are the client.
    public static func outgoing(
        _ opcode: WebSocketOpcode,
        data: ByteBuffer,
        role: WebSocketRole
    ) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: opcode, maskKey: role == .client ? .random() : nil, data: data)
    }

    /// A close frame with `code` and a UTF-8 `reason` trimmed to the 123 bytes a control frame allows.
    public static func close(
        code: WebSocketErrorCode,
        reason: String,
        role: WebSocketRole,
        allocator: ByteBufferAllocator
    ) -> WebSocketFrame {
        var payload = allocator.buffer(capacity: 2 + reason.utf8.count)
        payload.write(webSocketErrorCode: code)
        payload.writeBytes(reason.utf8.prefix(123))
        return .outgoing(.connectionClose, data: payload, role: role)
    }
}
