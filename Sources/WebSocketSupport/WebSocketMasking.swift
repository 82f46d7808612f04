import NIOCore
import NIOWebSocket

extension ByteBuffer {
    /// XORs the readable bytes with `key` (RFC 6455 §5.3), eight bytes at a time: masking and unmasking
    /// are the same operation. NIO's `webSocketMask` goes byte by byte, which capped the relay toward
    /// the API server at about 230 MB/s (Benchmarks/PROFILES.md); this runs at memory speed.
    public mutating func applyWebSocketMask(_ key: WebSocketMaskingKey) {
        let keyBytes = (key[0], key[1], key[2], key[3])
        var pattern: UInt64 = 0
        withUnsafeMutableBytes(of: &pattern) { word in
            for index in 0..<8 {
                switch index % 4 {
                case 0: word[index] = keyBytes.0
                case 1: word[index] = keyBytes.1
                case 2: word[index] = keyBytes.2
                default: word[index] = keyBytes.3
                }
            }
        }
        self.withUnsafeMutableReadableBytes { bytes in
            var index = 0
            while index + 8 <= bytes.count {
                let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                bytes.storeBytes(of: word ^ pattern, toByteOffset: index, as: UInt64.self)
                index += 8
            }
            // The pattern repeats every four bytes and `index` is a multiple of eight here.
            while index < bytes.count {
                bytes[index] ^= key[index % 4]
                index += 1
            }
        }
    }
}

extension WebSocketFrame {
    /// The application data with the mask removed; use it instead of NIO's byte-by-byte `unmaskedData`.
    public var payload: ByteBuffer {
        guard let key = self.maskKey else { return self.data }
        var data = self.data
        data.applyWebSocketMask(key)
        return data
    }
}
