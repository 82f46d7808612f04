import Crypto
import Foundation

/// The RFC 6455 handshake keys: the client's random nonce and the server's proof that it read it.
public enum WebSocketKeys {
    /// The GUID every RFC 6455 server appends to the client's key before hashing.
    private static let acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64.
    public static func makeClientKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString()
    }

    /// The `Sec-WebSocket-Accept` value that answers `clientKey`.
    public static func acceptValue(forClientKey clientKey: String) -> String {
        let digest = Insecure.SHA1.hash(data: Data((clientKey + acceptGUID).utf8))
        return Data(digest).base64EncodedString()
    }

    /// Whether `key` is a well-formed `Sec-WebSocket-Key`: base64 of exactly 16 bytes.
    public static func isValidClientKey(_ key: String) -> Bool {
        guard key.utf8.count == 24, let decoded = Data(base64Encoded: key) else { return false }
        return decoded.count == 16
    }
}
