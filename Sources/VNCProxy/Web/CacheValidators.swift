#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `ETag` and `Last-Modified` of a file, from its size and modification time, and the check of a
/// request's `If-None-Match` against them. A file replaced by a package upgrade changes both.
struct CacheValidators: Sendable, Equatable {
    var size: Int
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int

    /// A strong tag: `"SIZE-SECONDS.NANOSECONDS"` in hex.
    var entityTag: String {
        "\"\(String(self.size, radix: 16))-\(String(self.modifiedSeconds, radix: 16)).\(String(self.modifiedNanoseconds, radix: 16))\""
    }

    var lastModified: String { Self.httpDate(secondsSinceEpoch: self.modifiedSeconds) }

    /// Whether `If-None-Match` (all its values) names this file's tag, so a 304 will do.
    /// Weak comparison, as RFC 9110 §13.1.2 asks for GET and HEAD.
    func isMatched(byIfNoneMatch values: [String]) -> Bool {
        let tag = self.entityTag
        return values.contains { value in
            value.split(separator: ",").contains { candidate in
                let trimmed = candidate.trimmingASCIISpaces()
                return trimmed == "*" || trimmed == tag || (trimmed.hasPrefix("W/") && trimmed.dropFirst(2) == tag)
            }
        }
    }

    /// IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func httpDate(secondsSinceEpoch: Int) -> String {
        var time = time_t(secondsSinceEpoch)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func twoDigits(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(twoDigits(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(twoDigits(parts.tm_hour)):\(twoDigits(parts.tm_min)):\(twoDigits(parts.tm_sec)) GMT"
    }
}

extension StringProtocol {
    fileprivate func trimmingASCIISpaces() -> SubSequence {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = self.firstIndex(where: { !isSpace($0) }), let end = self.lastIndex(where: { !isSpace($0) }) else {
            return self[self.endIndex...]
        }
        return self[start...end]
    }
}
