import Foundation

/// The public keys a verifier picks from, by a token's `kid` and `alg`.
struct KeySet: Sendable {
    var keys: [VerificationKey]
    /// JWKS entries left out (another use, type or algorithm), with the reason: for the log.
    var skipped: [String] = []

    init(keys: [VerificationKey]) {
        self.keys = keys
    }

    /// The keys of a JWKS document, `{"keys": [JWK, ...]}`. A document with no key the proxy can use
    /// is refused: taking it would lock every asymmetric token out.
    init(jwks data: Data) throws(ConfigurationError) {
        struct Document: Decodable {
            var keys: [JSONWebKey]
        }
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: data)
        } catch {
            throw ConfigurationError("not a JWKS document ({\"keys\": [...]})")
        }
        self.keys = []
        for entry in document.keys {
            switch try entry.decode() {
            case .key(let key): self.keys.append(key)
            case .skipped(let reason): self.skipped.append("\(entry.kid.map { String($0.prefix(64)) } ?? "a key without kid"): \(reason)")
            }
        }
        guard !self.keys.isEmpty else {
            throw ConfigurationError("no RS256, ES256 or EdDSA signing key among its \(document.keys.count) keys")
        }
    }

    /// Both sets' keys.
    func union(_ other: KeySet) -> KeySet {
        KeySet(keys: self.keys + other.keys)
    }

    /// The algorithms some key verifies, in a fixed order.
    var algorithms: [TokenAlgorithm] {
        TokenAlgorithm.allCases.filter { algorithm in self.keys.contains { $0.algorithm == algorithm } }
    }

    /// The keys that may have signed a token whose header names `kid` and `algorithm`: only keys
    /// pinned to that algorithm, and when the header has a `kid`, only the keys it names.
    /// Empty when no such key is pinned to the algorithm; throws when the `kid` names no key at all.
    /// Keys may share a kid (an issuer's rotation overlap): each is tried.
    func candidates(kid: String?, algorithm: TokenAlgorithm) throws(TokenError) -> [VerificationKey] {
        guard let kid else { return self.keys.filter { $0.algorithm == algorithm } }
        let named = self.keys.filter { $0.kid == kid }
        guard !named.isEmpty else { throw .keyUnknown }
        return named.filter { $0.algorithm == algorithm }
    }
}
