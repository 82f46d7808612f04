/// The JWS algorithms the proxy knows (RFC 7518). Each asymmetric one belongs to exactly one key
/// type, so a key's algorithm is pinned by what the key is, never by what a token's header says.
public enum TokenAlgorithm: String, Sendable, CaseIterable, CustomStringConvertible {
    /// HMAC with SHA-256 and the secret shared with LabOrchestrator.
    case hs256 = "HS256"
    /// RSASSA-PKCS1-v1_5 with SHA-256, an RSA key of 2048 bits or more.
    case rs256 = "RS256"
    /// ECDSA on P-256 with SHA-256.
    case es256 = "ES256"
    /// Ed25519.
    case edDSA = "EdDSA"

    public var description: String { self.rawValue }
}
