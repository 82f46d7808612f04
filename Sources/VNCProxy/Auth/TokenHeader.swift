/// The JOSE header of a token, as the signer writes it.
struct TokenHeader: Encodable, Sendable {
    var alg: String
    /// Names the key that signed the token; the verifier looks keys up by it.
    var kid: String?
    var typ: String?

    /// What the verifier reads of every token: exactly what it read before public keys existed, so an
    /// odd `kid` or `typ` changes no HS256 outcome.
    struct Algorithm: Decodable {
        var alg: String
        /// Extensions the verifier would have to understand; it understands none, so any is refused.
        var crit: [String]?
    }

    /// Read only for asymmetric tokens, which pick their key by it.
    struct KeyID: Decodable {
        var kid: String?
    }
}
