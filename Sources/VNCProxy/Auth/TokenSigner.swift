import Crypto
import Foundation

/// Mints HS256 tokens in LabOrchestrator's layout, for `vnc-proxy token`, the demo and tests.
public struct TokenSigner: Sendable {
    private let key: SymmetricKey

    public init(secret: String) {
        self.key = SymmetricKey(data: Data(secret.utf8))
    }

    public func sign(_ claims: TokenClaims) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let header = Base64URL.encode(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let payload = Base64URL.encode(try encoder.encode(claims))
        let signingInput = header + "." + payload
        let mac = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: self.key)
        return signingInput + "." + Base64URL.encode(Data(mac))
    }

    /// A token for `vmNames` in `namespace`, valid for `lifetime` seconds from `now`.
    public func sign(
        userID: Identifier = .int(1),
        namespace: String,
        vmNames: [String],
        lifetime: Double,
        now: Date = Date()
    ) throws -> String {
        try self.sign(TokenClaims(
            id: userID,
            exp: (now.timeIntervalSince1970 + lifetime).rounded(),
            labInstance: .init(labID: .int(1), labInstanceID: .int(1), namespaceName: namespace, allowedVMINames: vmNames)))
    }
}
