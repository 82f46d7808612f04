import _CryptoExtras
import Crypto
import Foundation
import SwiftASN1
import X509

/// A public key that verifies asymmetric tokens, with its algorithm pinned by its type:
/// RSA -> RS256, P-256 -> ES256, Ed25519 -> EdDSA.
///
/// Signatures are checked with swift-crypto directly rather than through jwt-kit: jwt-kit 5 checks
/// signatures only behind its `JWTKeyCollection` actor, so every check would be an `await`, and the
/// verifier runs synchronously on the event loop at every handshake.
public struct VerificationKey: Sendable, CustomStringConvertible {
    /// The only algorithm this key verifies.
    public let algorithm: TokenAlgorithm
    /// The key id a token's `kid` selects this key by: given, or else the key's RFC 7638 thumbprint.
    public let kid: String
    let material: Material

    enum Material: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        case p256(P256.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
    }

    init(material: Material, kid: String?) throws(ConfigurationError) {
        if case .rsa(let key) = material, key.keySizeInBits < Self.minimumRSABits { throw Self.tooShort(key) }
        self.material = material
        switch material {
        case .rsa: self.algorithm = .rs256
        case .p256: self.algorithm = .es256
        case .ed25519: self.algorithm = .edDSA
        }
        if let kid {
            self.kid = kid
        } else {
            self.kid = try JSONWebKey(material).thumbprint()
        }
    }

    /// Shorter RSA keys can be factored by a well-funded attacker (NIST SP 800-131A).
    static let minimumRSABits = 2048

    private static func tooShort(_ key: _RSA.Signing.PublicKey) -> ConfigurationError {
        ConfigurationError("an RSA key of \(key.keySizeInBits) bits is too short; \(Self.minimumRSABits) or more are required")
    }

    /// A key from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as `openssl pkey -pubout` writes it.
    public init(pem: String, kid: String? = nil) throws(ConfigurationError) {
        let document: PEMDocument
        do {
            document = try PEMDocument(pemString: pem)
        } catch {
            throw ConfigurationError("not a PEM public key")
        }
        if document.discriminator.hasSuffix("PRIVATE KEY") {
            throw ConfigurationError("a private key, not a public key (openssl pkey -in KEY -pubout writes the public one)")
        }
        guard document.discriminator == "PUBLIC KEY" else {
            throw ConfigurationError("a PEM \(document.discriminator.prefix(32)), not a PUBLIC KEY")
        }
        let parsed: Certificate.PublicKey
        do {
            parsed = try Certificate.PublicKey(pemDocument: document)
        } catch {
            // swift-certificates refuses RSA keys under 2048 bits: say that rather than "malformed".
            if let short = try? _RSA.Signing.PublicKey(unsafePEMRepresentation: pem) {
                throw Self.tooShort(short)
            }
            throw ConfigurationError("an unsupported or malformed public key; RSA, P-256 and Ed25519 keys are supported")
        }
        if let key = _RSA.Signing.PublicKey(parsed) {
            try self.init(material: .rsa(key), kid: kid)
        } else if let key = P256.Signing.PublicKey(parsed) {
            try self.init(material: .p256(key), kid: kid)
        } else if let key = Curve25519.Signing.PublicKey(parsed) {
            try self.init(material: .ed25519(key), kid: kid)
        } else {
            let type = P384.Signing.PublicKey(parsed) != nil ? "P-384" : P521.Signing.PublicKey(parsed) != nil ? "P-521" : "this"
            throw ConfigurationError("unsupported key type \(type); RSA (RS256), P-256 (ES256) and Ed25519 (EdDSA) keys are supported")
        }
    }

    /// Reads a PEM public key file; errors name the file.
    public static func load(file path: String, kid: String? = nil) throws(ConfigurationError) -> VerificationKey {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 64 * 1024 else {
            throw ConfigurationError("cannot read public key file \(path)")
        }
        do {
            return try VerificationKey(pem: String(decoding: data, as: UTF8.self), kid: kid)
        } catch {
            throw ConfigurationError("public key file \(path): \(error.description)")
        }
    }

    /// Reads `PATH` or `KID=PATH`: the text before the first `=` is a kid when it holds no `/`.
    static func load(reference: String) throws(ConfigurationError) -> VerificationKey {
        if let equals = reference.firstIndex(of: "="), !reference[..<equals].contains("/") {
            let kid = String(reference[..<equals])
            guard !kid.isEmpty else { throw ConfigurationError("public key \(reference): the kid before = is empty") }
            return try Self.load(file: String(reference[reference.index(after: equals)...]), kid: kid)
        }
        return try Self.load(file: reference)
    }

    /// Whether `signature` is this key's signature of `signingInput` under its pinned algorithm.
    func isValidSignature(_ signature: Data, for signingInput: Data) -> Bool {
        switch self.material {
        case .rsa(let key):
            // RS256 is PKCS#1 v1.5 by definition (RFC 7518 §3.3); swift-crypto calls the padding
            // insecure because of its use in encryption, which does not apply to signatures.
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature),
                                        for: SHA256.hash(data: signingInput), padding: .insecurePKCS1v1_5)
        case .p256(let key):
            // JWS carries ECDSA signatures as the raw r || s pair (RFC 7518 §3.4), not DER.
            guard let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(ecdsa, for: signingInput)
        case .ed25519(let key):
            return key.isValidSignature(signature, for: signingInput)
        }
    }

    public var description: String { "\(self.algorithm) key \(self.kid)" }
}
