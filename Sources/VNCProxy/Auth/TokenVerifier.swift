import Crypto
import Foundation

/// Verifies tokens: the algorithm pinned per key, signature, `exp` (required), `nbf`, optionally
/// `aud` and `iss`, and the LabOrchestrator claim layout.
///
/// HS256 tokens are checked with the shared secret, and only with it; RS256, ES256 and EdDSA tokens
/// only with public keys pinned to that algorithm. So a public key never serves as an HMAC secret,
/// the secret never as a public key, and `none` has no key at all.
///
/// HS256 is checked with swift-crypto's HMAC directly rather than through jwt-kit, because deployed
/// LabOrchestrator secrets are often shorter than the 32 bytes jwt-kit insists on.
public struct TokenVerifier: Sendable {
    private let secret: SymmetricKey?
    private let publicKeys: KeySet
    private let jwks: JWKSFile?
    private let audience: String?
    private let issuer: String?
    private let leeway: Double

    /// The most VM names a token may list; a real lab has a handful.
    static let maxAllowedNames = 1024

    /// A verifier of LabOrchestrator's HS256 tokens only.
    public init(secret: String, leewaySeconds: Double = 5) {
        self.init(secret: secret, publicKeys: [], leewaySeconds: leewaySeconds)
    }

    /// - Parameters:
    ///   - secret: the HS256 secret; nil refuses HS256 tokens.
    ///   - publicKeys: keys for RS256, ES256 and EdDSA tokens, next to those of `jwks`.
    ///   - audience: when set, a token's `aud` (string or array) must contain it.
    ///   - issuer: when set, a token's `iss` must equal it.
    public init(
        secret: String?,
        publicKeys: [VerificationKey],
        jwks: JWKSFile? = nil,
        audience: String? = nil,
        issuer: String? = nil,
        leewaySeconds: Double = 5
    ) {
        self.secret = secret.map { SymmetricKey(data: Data($0.utf8)) }
        self.publicKeys = KeySet(keys: publicKeys)
        self.jwks = jwks
        self.audience = audience
        self.issuer = issuer
        self.leeway = leewaySeconds
    }

    /// Verifies `token` and returns its claims.
    public func verify(_ token: some StringProtocol, now: Date = Date()) throws(TokenError) -> TokenClaims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerJSON = Base64URL.decode(parts[0]) else { throw .malformed }
        let header: TokenHeader.Algorithm
        do {
            header = try JSONDecoder().decode(TokenHeader.Algorithm.self, from: headerJSON)
        } catch {
            throw .malformed
        }
        // The algorithm alone decides what may check the signature: `none`, `HS512`, or an `RS256`
        // header meant to turn our secret into a "public key" are refused before any signature math.
        guard let algorithm = TokenAlgorithm(rawValue: header.alg), let checker = self.checker(for: algorithm) else {
            throw .algorithmNotAllowed(header.alg, accepted: self.acceptedAlgorithms(self.keySet))
        }
        guard header.crit == nil, let payloadJSON = Base64URL.decode(parts[1]),
              let signature = Base64URL.decode(parts[2]) else {
            throw .malformed
        }

        let signingInput = Data(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        let signatureIsValid: Bool
        switch checker {
        case .secret(let secret):
            signatureIsValid = HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signingInput, using: secret)
        case .publicKeys(let keys):
            let kid: String?
            do {
                kid = try JSONDecoder().decode(TokenHeader.KeyID.self, from: headerJSON).kid
            } catch {
                throw .malformed
            }
            let candidates = try keys.candidates(kid: kid, algorithm: algorithm)
            // The kid names a key, but one pinned to another algorithm.
            guard !candidates.isEmpty else {
                throw .algorithmNotAllowed(header.alg, accepted: self.acceptedAlgorithms(keys))
            }
            signatureIsValid = candidates.contains { $0.isValidSignature(signature, for: signingInput) }
        }
        guard signatureIsValid else { throw .badSignature }

        let claims: TokenClaims
        do {
            claims = try JSONDecoder().decode(TokenClaims.self, from: payloadJSON)
        } catch {
            throw .invalidClaims
        }
        guard claims.exp.isFinite, claims.labInstance.allowedVMINames.count <= Self.maxAllowedNames else {
            throw .invalidClaims
        }
        let nowSeconds = now.timeIntervalSince1970
        guard nowSeconds <= claims.exp + self.leeway else { throw .expired }
        if let nbf = claims.nbf, nowSeconds + self.leeway < nbf { throw .notYetValid }
        if self.audience != nil || self.issuer != nil {
            let registered: RegisteredClaims
            do {
                registered = try JSONDecoder().decode(RegisteredClaims.self, from: payloadJSON)
            } catch {
                throw .invalidClaims
            }
            if let audience = self.audience, !(registered.aud?.values.contains(audience) ?? false) { throw .audienceInvalid }
            if let issuer = self.issuer, registered.iss != issuer { throw .issuerInvalid }
        }
        guard KubernetesName.isValidLabel(claims.labInstance.namespaceName) else { throw .invalidNamespace }
        return claims
    }

    private enum SignatureChecker {
        case secret(SymmetricKey)
        case publicKeys(KeySet)
    }

    /// What checks signatures of `algorithm`: the secret for HS256, else the keys, when some key is
    /// pinned to it. nil when nothing configured may.
    private func checker(for algorithm: TokenAlgorithm) -> SignatureChecker? {
        if algorithm == .hs256 { return self.secret.map(SignatureChecker.secret) }
        let keys = self.keySet
        return keys.keys.contains { $0.algorithm == algorithm } ? .publicKeys(keys) : nil
    }

    /// The static keys and the JWKS file's current ones.
    private var keySet: KeySet {
        guard let jwks = self.jwks else { return self.publicKeys }
        return self.publicKeys.union(jwks.keys)
    }

    private func acceptedAlgorithms(_ keys: KeySet) -> [String] {
        (self.secret == nil ? [] : [TokenAlgorithm.hs256.rawValue]) + keys.algorithms.map(\.rawValue)
    }
}

extension TokenClaims {
    /// Whether this token opens the console of `vmName`.
    public func allows(vmName: some StringProtocol) -> Bool {
        self.labInstance.allowedVMINames.contains { $0 == vmName }
    }
}
