/// A request path fit for logs. Only the configured prefix and a final segment that is a valid
/// Kubernetes name are shown; every other segment is replaced, so a token never reaches a log line,
/// wherever a malformed path puts it.
struct RedactedPath: CustomStringConvertible {
    let description: String

    init(uri: String, prefix: [Substring]) {
        let path = uri.prefix { $0 != "?" && $0 != "#" }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let shown = segments.enumerated().map { index, segment -> Substring in
            if index < prefix.count, segment == prefix[index] { return segment }
            if index == segments.count - 1, KubernetesName.isValidLabel(segment) { return segment }
            return segment.isEmpty ? "" : "<redacted>"
        }
        self.description = String(("/" + shown.joined(separator: "/")).prefix(200))
    }
}
