/// A request target taken apart into the path segments of a file under the web root, with every
/// form of escape refused before the file system is asked.
///
/// Refused (nil: names no file, so the request gets the proxy's answer, a 4xx): a target that is not
/// a plain `/path`, bad percent-encoding or UTF-8, a segment that starts with `.` (so `.`, `..` and
/// hidden files such as `.git`), an empty segment inside the path (`a//b`), and a `/`, `\`, NUL or
/// control character that arrives encoded (`%2f`, `%5c`, `%00`) or raw. Decoding happens once, here:
/// the segments are never decoded again.
struct WebPath: Sendable, Equatable {
    /// Decoded, each one a single safe file name.
    var segments: [String]
    /// The target ended with `/` (or was `/`): it names a directory.
    var namesDirectory: Bool

    init?(uri: String) {
        let path = uri.prefix { $0 != "?" && $0 != "#" }
        guard path.first == "/", path.utf8.count <= 4096 else { return nil }
        var rawSegments = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        self.namesDirectory = rawSegments.last?.isEmpty ?? true
        if self.namesDirectory { rawSegments.removeLast() }
        var segments: [String] = []
        for raw in rawSegments {
            guard let segment = Self.percentDecoded(raw), Self.isSafeFileName(segment) else { return nil }
            segments.append(segment)
        }
        self.segments = segments
    }

    /// The path relative to the web root, e.g. `core/rfb.js`; empty for the root itself.
    var relativePath: String { self.segments.joined(separator: "/") }

    var fileExtension: Substring? {
        guard let name = self.segments.last, let dot = name.lastIndex(of: ".") else { return nil }
        return name[name.index(after: dot)...]
    }

    private static func isSafeFileName(_ name: String) -> Bool {
        guard !name.isEmpty, !name.hasPrefix("."), name.utf8.count <= 255 else { return false }
        return name.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F && $0 != "/" && $0 != "\\" }
    }

    /// nil for a stray `%`, a bad hex digit, or bytes that are not UTF-8.
    private static func percentDecoded(_ raw: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.utf8.count)
        var iterator = raw.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        let text = String(decoding: bytes, as: UTF8.self)
        // Decoding replaces invalid UTF-8; a round trip that changes the bytes means there was some.
        return text.utf8.elementsEqual(bytes) ? text : nil
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
