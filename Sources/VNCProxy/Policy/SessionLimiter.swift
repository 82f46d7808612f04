import NIOConcurrencyHelpers

/// Counts sessions in total, per token subject and per VM, and refuses one over a cap.
final class SessionLimiter: Sendable {
    struct Caps: Sendable {
        var total: Int?
        var perSubject: Int?
        var perVM: Int?
    }

    /// A granted place; `release` gives it back exactly once.
    final class Ticket: Sendable {
        private let release: NIOLockedValueBox<(@Sendable () -> Void)?>

        init(_ release: @escaping @Sendable () -> Void) {
            self.release = NIOLockedValueBox(release)
        }

        func releaseOnce() {
            let release = self.release.withLockedValue { value -> (@Sendable () -> Void)? in
                defer { value = nil }
                return value
            }
            release?()
        }
    }

    private struct Counts {
        var total = 0
        var bySubject: [String: Int] = [:]
        var byVM: [String: Int] = [:]
    }

    private let caps: Caps
    private let counts = NIOLockedValueBox(Counts())

    init(caps: Caps) {
        self.caps = caps
    }

    /// A ticket, or the cap that was reached.
    func acquire(subject: String, vm: String) -> Result<Ticket, ProxyError> {
        let refusal: ProxyError? = self.counts.withLockedValue { counts in
            if let cap = self.caps.total, counts.total >= cap {
                return ProxyError(.tooManyRequests, "too_many_sessions", "the proxy is at its session limit")
            }
            if let cap = self.caps.perSubject, counts.bySubject[subject, default: 0] >= cap {
                return ProxyError(.tooManyRequests, "too_many_sessions_for_user", "this user has \(cap) open sessions")
            }
            if let cap = self.caps.perVM, counts.byVM[vm, default: 0] >= cap {
                return ProxyError(.tooManyRequests, "too_many_sessions_for_vm", "this VM has \(cap) open sessions")
            }
            counts.total += 1
            counts.bySubject[subject, default: 0] += 1
            counts.byVM[vm, default: 0] += 1
            return nil
        }
        if let refusal { return .failure(refusal) }
        return .success(Ticket { [counts] in
            counts.withLockedValue { counts in
                counts.total -= 1
                counts.bySubject[subject] = counts.bySubject[subject].flatMap { $0 > 1 ? $0 - 1 : nil }
                counts.byVM[vm] = counts.byVM[vm].flatMap { $0 > 1 ? $0 - 1 : nil }
            }
        })
    }
}
