/// Names that are spliced into the upstream URL. Only RFC 1123 labels pass, so no `/`, `%`, `.`, `?`
/// or anything else that could change which Kubernetes resource is addressed ever reaches the API server.
enum KubernetesName {
    /// Whether `name` is an RFC 1123 label: 1 to 63 of `a-z`, `0-9`, `-`, starting and ending alphanumeric.
    static func isValidLabel(_ name: some StringProtocol) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count), let first = bytes.first, let last = bytes.last else { return false }
        guard isLowerAlphanumeric(first), isLowerAlphanumeric(last) else { return false }
        return bytes.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") }
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
