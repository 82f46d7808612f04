import NIOCore
import NIOHTTP1
import WebSocketSupport

/// A refusal the client sees as an HTTP status and a JSON body `{"error": CODE, "reason": TEXT}`.
///
/// `reason` is written for people and never contains the token.
struct ProxyError: Error, Sendable, Equatable {
    var status: HTTPResponseStatus
    /// A stable machine-readable code, e.g. `token_expired`; also the outcome label in logs.
    var code: String
    var reason: String

    init(_ status: HTTPResponseStatus, _ code: String, _ reason: String) {
        self.status = status
        self.code = code
        self.reason = reason
    }

    func body(allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64 + self.reason.utf8.count)
        buffer.writeString(#"{"error":"#)
        buffer.writeJSONString(self.code)
        buffer.writeString(#","reason":"#)
        buffer.writeJSONString(self.reason)
        buffer.writeString("}\n")
        return buffer
    }

    /// The plain HTTP answer: the JSON body, never cached, with `extraHeaders` added.
    func answer(adding extraHeaders: HTTPHeaders = [:]) -> UpgradeDecision {
        var headers: HTTPHeaders = ["content-type": "application/json", "cache-control": "no-store"]
        headers.add(contentsOf: extraHeaders)
        return .respond(status: self.status, headers: headers, body: self.body(allocator: ByteBufferAllocator()))
    }

    static let notFound = ProxyError(.notFound, "not_found", "no such route")
}

extension ByteBuffer {
    /// Writes `string` as a JSON string literal, escaping quotes, backslashes and control characters.
    mutating func writeJSONString(_ string: String) {
        self.writeInteger(UInt8(ascii: "\""))
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": self.writeString("\\\"")
            case "\\": self.writeString("\\\\")
            case "\n": self.writeString("\\n")
            case "\r": self.writeString("\\r")
            case "\t": self.writeString("\\t")
            case _ where scalar.value < 0x20:
                self.writeString("\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16))
            default: self.writeString(String(scalar))
            }
        }
        self.writeInteger(UInt8(ascii: "\""))
    }
}
