import Crypto
import Foundation

/// Verifies LabOrchestrator tokens: HS256 only, signature, `exp` (required), `nbf`, claim layout.
///
/// HS256 is checked with swift-crypto's HMAC directly rather than through jwt-kit, because deployed
/// LabOrchestrator secrets are often shorter than the 32 bytes jwt-kit insists on.
public struct TokenVerifier: Sendable {
    private let key: SymmetricKey
    private let leeway: Double

    /// The most VM names a token may list; a real lab has a handful.
    static let maxAllowedNames = 1024

    public init(secret: String, leewaySeconds: Double = 5) {
        self.key = SymmetricKey(data: Data(secret.utf8))
        self.leeway = leewaySeconds
    }

    /// Verifies `token` and returns its claims.
    public func verify(_ token: some StringProtocol, now: Date = Date()) throws(TokenError) -> TokenClaims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerJSON = Base64URL.decode(parts[0]) else { throw .malformed }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: headerJSON)
        } catch {
            throw .malformed
        }
        // The algorithm is pinned: `none`, `HS512` or an `RS256` header meant to turn our secret into
        // a "public key" are refused before any signature is computed.
        guard header.alg == "HS256" else { throw .algorithmNotAllowed(header.alg) }
        guard header.crit == nil, let payloadJSON = Base64URL.decode(parts[1]),
              let signature = Base64URL.decode(parts[2]) else {
            throw .malformed
        }

        let signingInput = Data(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signingInput, using: self.key) else {
            throw .badSignature
        }

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
        guard KubernetesName.isValidLabel(claims.labInstance.namespaceName) else { throw .invalidNamespace }
        return claims
    }

    private struct Header: Decodable {
        var alg: String
        var crit: [String]?
    }
}

extension TokenClaims {
    /// Whether this token opens the console of `vmName`.
    public func allows(vmName: some StringProtocol) -> Bool {
        self.labInstance.allowedVMINames.contains { $0 == vmName }
    }
}
