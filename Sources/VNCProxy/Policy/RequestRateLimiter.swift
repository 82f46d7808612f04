import NIOConcurrencyHelpers
import NIOCore

/// A token bucket per client address: `rate` requests a second, bursts of up to `rate`.
final class RequestRateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: NIODeadline
    }

    private let rate: Double
    private let buckets = NIOLockedValueBox<[String: Bucket]>([:])
    /// Above this many tracked addresses, buckets that are full again are forgotten.
    private static let pruneThreshold = 10_000

    init(requestsPerSecond: Int) {
        self.rate = Double(requestsPerSecond)
    }

    func allow(client: String, now: NIODeadline = .now()) -> Bool {
        self.buckets.withLockedValue { buckets in
            var bucket = buckets[client] ?? Bucket(tokens: self.rate, updated: now)
            let elapsed = Double((now - bucket.updated).nanoseconds) / 1e9
            bucket.tokens = min(self.rate, bucket.tokens + elapsed * self.rate)
            bucket.updated = now
            let allowed = bucket.tokens >= 1
            if allowed { bucket.tokens -= 1 }
            buckets[client] = bucket
            if buckets.count > Self.pruneThreshold {
                let horizon = now - .seconds(2)
                buckets = buckets.filter { $0.value.updated > horizon }
            }
            return allowed
        }
    }
}
