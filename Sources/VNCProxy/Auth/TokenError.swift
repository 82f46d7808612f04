/// Why a token was refused. Each case is one outcome in logs and one answer to the client.
public enum TokenError: Error, Sendable, Equatable {
    case malformed
    /// The header's algorithm, and the ones this verifier accepts.
    case algorithmNotAllowed(String, accepted: [String] = ["HS256"])
    /// The header's `kid` names no configured key.
    case keyUnknown
    case badSignature
    case invalidClaims
    case expired
    case notYetValid
    case audienceInvalid
    case issuerInvalid
    case invalidNamespace
    case vmNotAllowed

    var proxyError: ProxyError {
        switch self {
        case .malformed:
            return ProxyError(.unauthorized, "token_malformed", "the token is not a well-formed JWT")
        case .algorithmNotAllowed(let alg, let accepted):
            let required = switch accepted.count {
            case 0: "no algorithm is configured"
            case 1: "\(accepted[0]) is required"
            default: "one of \(accepted.joined(separator: ", ")) is required"
            }
            return ProxyError(.unauthorized, "token_algorithm_not_allowed",
                              "token algorithm \(alg.prefix(16)) is not accepted; \(required)")
        case .keyUnknown:
            return ProxyError(.unauthorized, "token_key_unknown", "no key matches the token's kid")
        case .badSignature:
            return ProxyError(.unauthorized, "token_invalid", "token signature does not verify")
        case .invalidClaims:
            return ProxyError(.unauthorized, "token_claims_invalid", "token claims do not match the LabOrchestrator layout")
        case .expired:
            return ProxyError(.unauthorized, "token_expired", "token expired")
        case .notYetValid:
            return ProxyError(.unauthorized, "token_not_yet_valid", "token is not valid yet")
        case .audienceInvalid:
            return ProxyError(.unauthorized, "token_audience_invalid", "the token is not meant for this proxy (aud)")
        case .issuerInvalid:
            return ProxyError(.unauthorized, "token_issuer_invalid", "the token is not from the expected issuer (iss)")
        case .invalidNamespace:
            return ProxyError(.badRequest, "invalid_namespace", "the token's namespace is not an RFC 1123 label")
        case .vmNotAllowed:
            return ProxyError(.forbidden, "vm_not_allowed", "Token not allowed for this vmi")
        }
    }
}
