import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing
@testable import WebSocketSupport

/// The word-at-a-time masking and the encoder built on it must produce exactly what RFC 6455 asks:
/// checked against NIO's own byte-by-byte mask and NIO's frame decoder.
@Suite struct FrameMaskingTests {
    @Test func wordMaskingMatchesByteMaskingForEveryLengthAndAlignment() {
        let key = WebSocketMaskingKey([0x37, 0xfa, 0x21, 0x3d] as [UInt8])!
        var checked = 0
        for length in 0..<70 {
            for offset in 0..<9 {
                var buffer = ByteBuffer(bytes: (0..<(offset + length)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
                buffer.moveReaderIndex(forwardBy: offset)
                var expected = buffer
                expected.webSocketMask(key)
                var masked = buffer
                masked.applyWebSocketMask(key)
                #expect(masked == expected, "length \(length) offset \(offset)")
                masked.applyWebSocketMask(key)
                #expect(masked == buffer, "masking twice restores the bytes")
                checked += 1
            }
        }
        #expect(checked == 70 * 9)
    }

    @Test(arguments: [0, 1, 125, 126, 127, 65_535, 65_536, 300_000])
    func encodedFramesDecodeWithNIOsDecoder(length: Int) throws {
        for masked in [false, true] {
            for withHeadroom in [false, true] {
                let channel = EmbeddedChannel()
                try channel.pipeline.syncOperations.addHandler(MaskingFrameEncoder())
                var data = ByteBuffer(bytes: (0..<(length + 16)).map { UInt8(truncatingIfNeeded: $0 &* 13) })
                data.moveReaderIndex(forwardBy: withHeadroom ? 16 : 0)
                if !withHeadroom { data.moveWriterIndex(to: length) }
                let original = data
                let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: masked ? .random() : nil, data: data)
                try channel.writeOutbound(frame)

                var wire = ByteBuffer()
                while var chunk = try channel.readOutbound(as: ByteBuffer.self) { wire.writeBuffer(&chunk) }
                let decoder = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)))
                try decoder.writeInbound(wire)
                let decoded = try #require(try decoder.readInbound(as: WebSocketFrame.self))
                #expect(decoded.fin && decoded.opcode == .binary)
                #expect((decoded.maskKey != nil) == masked)
                #expect(decoded.payload == original, "length \(length) masked \(masked) headroom \(withHeadroom)")
                #expect(try decoder.readInbound(as: WebSocketFrame.self) == nil)
                _ = try channel.finish()
                _ = try decoder.finish()
            }
        }
    }
}
