/// Which browser pages may open sessions, by their `Origin` header (RFC 6454).
struct OriginPolicy: Sendable {
    private let exact: Set<String>
    /// `*.example.org` patterns, stored as `.example.org`.
    private let suffixes: [String]
    private let requireOrigin: Bool

    init(allowed: [String], requireOrigin: Bool) {
        self.exact = Set(allowed.filter { !$0.hasPrefix("*.") }.map { $0.lowercased() })
        self.suffixes = allowed.filter { $0.hasPrefix("*.") }.map { String($0.dropFirst()).lowercased() }
        self.requireOrigin = requireOrigin
    }

    var isOpen: Bool { self.exact.isEmpty && self.suffixes.isEmpty && !self.requireOrigin }

    func allows(origin: String?) -> Bool {
        guard let origin = origin?.lowercased() else { return !self.requireOrigin }
        if self.exact.isEmpty && self.suffixes.isEmpty { return true }
        if self.exact.contains(origin) { return true }
        // The host of `scheme://host[:port]`.
        guard let schemeEnd = origin.range(of: "://") else { return false }
        let authority = origin[schemeEnd.upperBound...]
        let host = authority.hasPrefix("[") ? Substring(authority) : authority.prefix { $0 != ":" }
        return self.suffixes.contains { host.hasSuffix($0) && host.count > $0.count }
    }
}
