import NIOCore
import NIOWebSocket

/// Serialises websocket frames, masking payloads with `applyWebSocketMask` (eight bytes at a time).
///
/// It replaces NIO's `WebSocketFrameEncoder`, whose byte-by-byte masking was 71% of the proxy's CPU
/// when a viewer uploaded (Benchmarks/PROFILES.md). No extension is ever negotiated, so extension
/// data is only carried, never interpreted.
public final class MaskingFrameEncoder: ChannelOutboundHandler {
    public typealias OutboundIn = WebSocketFrame
    public typealias OutboundOut = ByteBuffer

    /// First byte, length byte, up to eight bytes of extended length, four of mask key.
    private static let maxHeaderLength = 14
    /// Up to this many payload bytes are copied behind the header rather than written separately.
    private static let maxCoalescedPayload = 4096

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = Self.unwrapOutboundIn(data)
        var payload = frame.data
        if var extensionData = frame.extensionData {
            extensionData.writeImmutableBuffer(payload)
            payload = extensionData
        }
        if let key = frame.maskKey { payload.applyWebSocketMask(key) }

        let header = FrameHeader(frame: frame, length: payload.readableBytes)
        // Writing the header into the payload's headroom saves a buffer and a write; it needs the
        // payload to be ours alone, or the bytes in front of it would belong to someone else.
        let prepended = payload.modifyIfUniquelyOwned { buffer -> Bool in
            guard buffer.readerIndex >= header.byteCount else { return false }
            let start = buffer.readerIndex - header.byteCount
            header.write(into: &buffer, at: start)
            buffer.moveReaderIndex(to: start)
            return true
        } ?? false
        if !prepended {
            guard payload.readableBytes > Self.maxCoalescedPayload else {
                // A small frame (a key press, a pointer move) goes out as one buffer: over TLS each
                // write becomes a record of its own, and a lone 6-byte header record would double the
                // records and the encryption calls of an interactive session.
                var frameBuffer = context.channel.allocator.buffer(capacity: header.byteCount + payload.readableBytes)
                header.write(into: &frameBuffer, at: 0)
                frameBuffer.moveWriterIndex(to: header.byteCount)
                frameBuffer.writeImmutableBuffer(payload)
                context.write(Self.wrapOutboundOut(frameBuffer), promise: promise)
                return
            }
            var headerBuffer = context.channel.allocator.buffer(capacity: Self.maxHeaderLength)
            header.write(into: &headerBuffer, at: 0)
            headerBuffer.moveWriterIndex(to: header.byteCount)
            context.write(Self.wrapOutboundOut(headerBuffer), promise: nil)
        }
        context.write(Self.wrapOutboundOut(payload), promise: promise)
    }
}

@available(*, unavailable)
extension MaskingFrameEncoder: Sendable {}

/// RFC 6455 §5.2 frame header.
private struct FrameHeader {
    var firstByte: UInt8
    var length: Int
    var maskKey: WebSocketMaskingKey?

    init(frame: WebSocketFrame, length: Int) {
        var firstByte = UInt8(webSocketOpcode: frame.opcode)
        if frame.fin { firstByte |= 0x80 }
        if frame.rsv1 { firstByte |= 0x40 }
        if frame.rsv2 { firstByte |= 0x20 }
        if frame.rsv3 { firstByte |= 0x10 }
        self.firstByte = firstByte
        self.length = length
        self.maskKey = frame.maskKey
    }

    var byteCount: Int {
        let lengthBytes = self.length <= 125 ? 0 : (self.length <= Int(UInt16.max) ? 2 : 8)
        return 2 + lengthBytes + (self.maskKey == nil ? 0 : 4)
    }

    /// Sets the header's bytes at `index`; the caller moves the buffer's indices.
    func write(into buffer: inout ByteBuffer, at index: Int) {
        let maskBit: UInt8 = self.maskKey == nil ? 0 : 0x80
        var offset = index
        offset += buffer.setInteger(self.firstByte, at: offset)
        if self.length <= 125 {
            offset += buffer.setInteger(UInt8(self.length) | maskBit, at: offset)
        } else if self.length <= Int(UInt16.max) {
            offset += buffer.setInteger(126 | maskBit, at: offset)
            offset += buffer.setInteger(UInt16(self.length), at: offset)
        } else {
            offset += buffer.setInteger(127 | maskBit, at: offset)
            offset += buffer.setInteger(UInt64(self.length), at: offset)
        }
        if let key = self.maskKey {
            buffer.setBytes(key, at: offset)
        }
    }
}
