/// The proxy's route taken apart: `[/PREFIX]/TOKEN/VMNAME`, or `[/PREFIX]/VMNAME` when the token
/// travels in a subprotocol or a trusted header instead of the URL.
struct ProxyRoute: Sendable, Equatable {
    /// nil when the path carries no token.
    var token: Substring?
    var vmName: Substring

    /// The longest token accepted in a path; LabOrchestrator tokens are a few hundred bytes.
    static let maxTokenLength = 8 * 1024

    /// Splits a request target against `prefix` (segments, already normalised).
    ///
    /// - Returns: nil when the path is not under the prefix or has another shape (a 404);
    ///   throws a `ProxyError` when it has the right shape but a bad segment (a 400).
    static func parse(uri: String, prefix: [Substring]) throws(ProxyError) -> ProxyRoute? {
        let path = uri.prefix { $0 != "?" && $0 != "#" }
        guard path.first == "/" else { return nil }
        let segments = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        guard segments.starts(with: prefix), [prefix.count + 1, prefix.count + 2].contains(segments.count) else {
            return nil
        }
        let vmName = segments[segments.count - 1]
        // `/` or `/PREFIX/` names nothing.
        if vmName.isEmpty && segments.count == prefix.count + 1 { return nil }
        let token = segments.count == prefix.count + 2 ? segments[prefix.count] : nil
        if let token {
            try Self.checkToken(token)
        }
        guard KubernetesName.isValidLabel(vmName) else {
            throw ProxyError(.badRequest, "invalid_vm_name", "the VM name must be an RFC 1123 label")
        }
        return ProxyRoute(token: token, vmName: vmName)
    }

    /// A JWT's shape and size, before any decoding.
    static func checkToken(_ token: some StringProtocol) throws(ProxyError) {
        guard !token.isEmpty, token.utf8.count <= Self.maxTokenLength, token.utf8.allSatisfy(Self.isTokenByte) else {
            throw ProxyError(.unauthorized, "token_malformed", "the token segment is not a JWT")
        }
    }

    /// Splits a configured prefix such as `/ws_proxy/` into its segments.
    static func segments(ofPrefix prefix: String) -> [Substring] {
        prefix.split(separator: "/")
    }

    /// A JWT is three base64url parts joined by dots.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
            return true
        default:
            return false
        }
    }
}
