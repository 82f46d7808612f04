/// The JOSE header of a token: what the verifier reads and the signer writes.
struct TokenHeader: Codable, Sendable {
    var alg: String
    /// Names the key that signed the token; the verifier looks keys up by it.
    var kid: String?
    var typ: String?
    /// Extensions the verifier would have to understand; we understand none, so any is refused.
    var crit: [String]?
}
