import Crypto
import Foundation

/// Mints tokens in LabOrchestrator's layout, for `vnc-proxy token`, the demo and tests: HS256 with the
/// shared secret, or RS256, ES256 or EdDSA with a private key.
public struct TokenSigner: Sendable {
    private let method: Method
    private let kid: String?

    private enum Method: Sendable {
        case secret(SymmetricKey)
        case privateKey(SigningKey)
    }

    /// HS256 with the shared secret.
    public init(secret: String, kid: String? = nil) {
        self.method = .secret(SymmetricKey(data: Data(secret.utf8)))
        self.kid = kid
    }

    /// The key's algorithm; `kid`, when given, goes into the header for the verifier to pick the key by.
    public init(key: SigningKey, kid: String? = nil) {
        self.method = .privateKey(key)
        self.kid = kid
    }

    public var algorithm: TokenAlgorithm {
        switch self.method {
        case .secret: return .hs256
        case .privateKey(let key): return key.algorithm
        }
    }

    public func sign(_ claims: TokenClaims) throws -> String {
        try self.sign(claims, registered: RegisteredClaims())
    }

    func sign(_ claims: TokenClaims, registered: RegisteredClaims) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Sorted keys keep an HS256 header byte for byte what it always was: {"alg":"HS256","typ":"JWT"}.
        let header = Base64URL.encode(try encoder.encode(TokenHeader(alg: self.algorithm.rawValue, kid: self.kid, typ: "JWT")))
        let payload = Base64URL.encode(try encoder.encode(Payload(claims: claims, registered: registered)))
        let signingInput = Data((header + "." + payload).utf8)
        let signature: Data
        switch self.method {
        case .secret(let key):
            signature = Data(HMAC<SHA256>.authenticationCode(for: signingInput, using: key))
        case .privateKey(let key):
            signature = try key.signature(for: signingInput)
        }
        return header + "." + payload + "." + Base64URL.encode(signature)
    }

    /// A token for `vmNames` in `namespace`, valid for `lifetime` seconds from `now`.
    public func sign(
        userID: Identifier = .int(1),
        namespace: String,
        vmNames: [String],
        lifetime: Double,
        audience: [String] = [],
        issuer: String? = nil,
        now: Date = Date()
    ) throws -> String {
        try self.sign(
            TokenClaims(
                id: userID,
                exp: (now.timeIntervalSince1970 + lifetime).rounded(),
                labInstance: .init(labID: .int(1), labInstanceID: .int(1), namespaceName: namespace, allowedVMINames: vmNames)),
            registered: RegisteredClaims(iss: issuer, aud: audience.isEmpty ? nil : .init(audience)))
    }

    /// LabOrchestrator's claims and the registered ones in one JSON object; without `iss` and `aud`
    /// it is exactly what `TokenClaims` alone encodes to.
    private struct Payload: Encodable {
        var claims: TokenClaims
        var registered: RegisteredClaims

        func encode(to encoder: Encoder) throws {
            try self.claims.encode(to: encoder)
            try self.registered.encode(to: encoder)
        }
    }
}
