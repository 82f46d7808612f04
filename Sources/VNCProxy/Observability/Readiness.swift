#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What `/readyz` checks: the proxy is not draining, and the service-account files it needs for
/// the next upstream connection can be read (a missing projected token means every session would fail).
struct Readiness: Sendable {
    struct Problem: Equatable {
        var status: String
        var reason: String
    }

    let registry: ConnectionRegistry
    /// Files read at every upstream dial; empty in local dev mode.
    let requiredFiles: [String]

    func problem() -> Problem? {
        if self.registry.isDraining {
            return Problem(status: "draining", reason: "the proxy is shutting down")
        }
        // access(2) is one cheap syscall and never blocks on the file's contents.
        if let unreadable = self.requiredFiles.first(where: { access($0, R_OK) != 0 }) {
            let name = unreadable.split(separator: "/").last.map(String.init) ?? unreadable
            return Problem(status: "not_ready", reason: "cannot read the service-account file \(name)")
        }
        return nil
    }
}
