/// Where the Kubernetes API server is and how to speak to it, parsed once from `remoteURL`.
struct UpstreamEndpoint: Sendable, Equatable {
    var host: String
    var port: Int
    var useTLS: Bool

    /// The `Host` header value: IPv6 literals go back in brackets.
    var hostHeader: String {
        let name = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "\(name):\(self.port)"
    }

    /// Parses `wss://host:port`, `https://host:port`, `ws://…` or `http://…`, with an optional trailing path of `/`.
    init(url: String) throws(ConfigurationError) {
        let schemes: [(String, Bool, Int)] = [("wss://", true, 443), ("https://", true, 443), ("ws://", false, 80), ("http://", false, 80)]
        guard let (scheme, tls, defaultPort) = schemes.first(where: { url.lowercased().hasPrefix($0.0) }) else {
            throw ConfigurationError("remote URL \(url) must start with wss://, https://, ws:// or http://")
        }
        var authority = url.dropFirst(scheme.count)
        while authority.last == "/" { authority = authority.dropLast() }
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("@") else {
            throw ConfigurationError("remote URL \(url) must be scheme://host[:port] with no path")
        }
        var host = Substring(authority)
        var port = defaultPort
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw ConfigurationError("remote URL \(url) has an unclosed [") }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.first == ":", let number = Int(rest.dropFirst()) else {
                    throw ConfigurationError("remote URL \(url) has a bad port")
                }
                port = number
            }
        } else if let colon = host.lastIndex(of: ":") {
            guard let number = Int(host[host.index(after: colon)...]) else {
                throw ConfigurationError("remote URL \(url) has a bad port")
            }
            port = number
            host = host[..<colon]
        }
        guard !host.isEmpty, (1...65535).contains(port) else {
            throw ConfigurationError("remote URL \(url) needs a host and a port between 1 and 65535")
        }
        self.host = String(host)
        self.port = port
        self.useTLS = tls
    }
}

/// The upstream path template with `{namespace}` and `{vmi_name}`.
struct UpstreamPath: Sendable {
    private let template: String
    private let query: String

    init(template: String, preserveSession: Bool?) throws(ConfigurationError) {
        guard template.hasPrefix("/"), template.contains("{vmi_name}"), template.contains("{namespace}") else {
            throw ConfigurationError("API path template must start with / and contain {namespace} and {vmi_name}")
        }
        self.template = template
        self.query = preserveSession.map { "?preserveSession=\($0)" } ?? ""
    }

    /// Both names have been checked to be RFC 1123 labels, so no escaping is needed.
    func path(namespace: some StringProtocol, vmName: some StringProtocol) -> String {
        self.template
            .replacingOccurrences(of: "{namespace}", with: namespace)
            .replacingOccurrences(of: "{vmi_name}", with: vmName) + self.query
    }
}
