/// Why a token was refused. Each case is one outcome in logs and one answer to the client.
public enum TokenError: Error, Sendable, Equatable {
    case malformed
    case algorithmNotAllowed(String)
    case badSignature
    case invalidClaims
    case expired
    case notYetValid
    case invalidNamespace
    case vmNotAllowed

    var proxyError: ProxyError {
        switch self {
        case .malformed:
            return ProxyError(.unauthorized, "token_malformed", "the token is not a well-formed JWT")
        case .algorithmNotAllowed(let alg):
            return ProxyError(.unauthorized, "token_algorithm_not_allowed",
                              "token algorithm \(alg.prefix(16)) is not accepted; HS256 is required")
        case .badSignature:
            return ProxyError(.unauthorized, "token_invalid", "token signature does not verify")
        case .invalidClaims:
            return ProxyError(.unauthorized, "token_claims_invalid", "token claims do not match the LabOrchestrator layout")
        case .expired:
            return ProxyError(.unauthorized, "token_expired", "token expired")
        case .notYetValid:
            return ProxyError(.unauthorized, "token_not_yet_valid", "token is not valid yet")
        case .invalidNamespace:
            return ProxyError(.badRequest, "invalid_namespace", "the token's namespace is not an RFC 1123 label")
        case .vmNotAllowed:
            return ProxyError(.forbidden, "vm_not_allowed", "Token not allowed for this vmi")
        }
    }
}
