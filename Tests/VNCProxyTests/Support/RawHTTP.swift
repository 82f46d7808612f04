import Foundation
import NIOCore
import NIOPosix

/// Sends bytes exactly as given and reads the reply until the server closes: for requests no
/// well-behaved client would send, and to see the status line and body the proxy answers with.
enum RawHTTP {
    struct Response {
        var raw: String
        /// What arrived, byte for byte: `raw` is it decoded as UTF-8, which mangles binary bodies.
        var bytes: [UInt8] = []
        var status: Int? {
            let parts = self.raw.split(separator: " ", maxSplits: 2)
            return parts.count > 1 && self.raw.hasPrefix("HTTP/1.1") ? Int(parts[1]) : nil
        }
        var body: String {
            guard let range = self.raw.range(of: "\r\n\r\n") else { return "" }
            return String(self.raw[range.upperBound...])
        }
        var bodyBytes: [UInt8] {
            let separator: [UInt8] = Array("\r\n\r\n".utf8)
            guard let start = self.bytes.indices.first(where: { self.bytes[$0...].starts(with: separator) }) else { return [] }
            return Array(self.bytes[(start + separator.count)...])
        }
        /// The first value of a response header, by case-insensitive name.
        func header(_ name: String) -> String? {
            let head = self.raw.components(separatedBy: "\r\n\r\n").first ?? ""
            for line in head.components(separatedBy: "\r\n").dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                if line[..<colon].lowercased() == name.lowercased() {
                    return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
            }
            return nil
        }
        /// The JSON body's `error` field.
        var errorCode: String? {
            guard let data = self.body.data(using: .utf8),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
            return object["error"] as? String
        }
        var reason: String? {
            guard let data = self.body.data(using: .utf8),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
            return object["reason"] as? String
        }
    }

    /// An upgrade request for `path` with the usual websocket headers plus `extraHeaders`.
    static func upgradeRequest(path: String, extraHeaders: [String] = []) -> String {
        (["GET \(path) HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"] + extraHeaders)
            .joined(separator: "\r\n") + "\r\n\r\n"
    }

    static func exchange(port: Int, _ request: String, timeout: TimeAmount = .seconds(15)) async throws -> Response {
        try await self.exchange(port: port, bytes: Array(request.utf8), timeout: timeout)
    }

    static func exchange(port: Int, bytes: [UInt8], timeout: TimeAmount = .seconds(15)) async throws -> Response {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(5))
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let deadline = channel.channel.eventLoop.scheduleTask(in: timeout) { channel.channel.close(promise: nil) }
        defer { deadline.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            // The server may already have answered and closed (a timeout); what it sent is still readable.
            try? await outbound.write(ByteBuffer(bytes: bytes))
            var received = ByteBuffer()
            do {
                for try await var chunk in inbound {
                    received.writeBuffer(&chunk)
                    // A 101 never ends by itself: stop once the head is complete.
                    if let text = received.getString(at: 0, length: received.readableBytes),
                       text.hasPrefix("HTTP/1.1 101"), text.contains("\r\n\r\n") { break }
                }
            } catch {
                // A reset after the answer still leaves the answer to inspect.
            }
            return Response(raw: String(decoding: received.readableBytesView, as: UTF8.self), bytes: Array(received.readableBytesView))
        }
    }
}
