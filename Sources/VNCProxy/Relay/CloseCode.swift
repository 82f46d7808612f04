import NIOWebSocket

/// RFC 6455 §7.4 close codes as numbers, and which of them may appear on the wire.
enum CloseCode {
    static func number(_ code: WebSocketErrorCode) -> UInt16 {
        UInt16(webSocketErrorCode: code)
    }

    /// 1005, 1006 and 1015 are reserved for local use, 1004 and 1016–2999 are unassigned or reserved.
    static func isSendable(_ code: WebSocketErrorCode) -> Bool {
        let number = Self.number(code)
        return (1000...1003).contains(number) || (1007...1014).contains(number) || (3000...4999).contains(number)
    }
}
