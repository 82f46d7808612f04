import _CryptoExtras
import Crypto
import Foundation
import X509

/// A private key that signs asymmetric tokens, its algorithm given by its type like its public half's:
/// RSA -> RS256, P-256 -> ES256, Ed25519 -> EdDSA.
public struct SigningKey: Sendable {
    public let algorithm: TokenAlgorithm
    private let material: Material

    private enum Material: Sendable {
        case rsa(_RSA.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
    }

    /// A key from PEM: PKCS#8 `PRIVATE KEY` (what `openssl genpkey` writes), `RSA PRIVATE KEY` or
    /// `EC PRIVATE KEY`. `algorithm`, when given, must be the key type's.
    public init(pem: String, algorithm: TokenAlgorithm? = nil) throws(ConfigurationError) {
        // swift-certificates tells the key types apart (PKCS#8 names its algorithm); swift-crypto
        // then parses the key it is.
        let publicKey: Certificate.PublicKey
        do {
            publicKey = try Certificate.PrivateKey(pemEncoded: pem).publicKey
        } catch {
            throw ConfigurationError("not a PEM private key of a supported type (RSA, P-256 or Ed25519)")
        }
        do {
            if _RSA.Signing.PublicKey(publicKey) != nil {
                self.material = .rsa(try _RSA.Signing.PrivateKey(pemRepresentation: pem))
                self.algorithm = .rs256
            } else if P256.Signing.PublicKey(publicKey) != nil {
                self.material = .p256(try P256.Signing.PrivateKey(pemRepresentation: pem))
                self.algorithm = .es256
            } else if Curve25519.Signing.PublicKey(publicKey) != nil {
                self.material = .ed25519(try Curve25519.Signing.PrivateKey(pemRepresentation: pem))
                self.algorithm = .edDSA
            } else {
                throw ConfigurationError("unsupported key type; RSA (RS256), P-256 (ES256) and Ed25519 (EdDSA) keys are supported")
            }
        } catch let error as ConfigurationError {
            throw error
        } catch {
            // swift-crypto refuses RSA keys under 2048 bits, as the verifier does.
            throw ConfigurationError("cannot use this private key: \(error)")
        }
        if let algorithm, algorithm != self.algorithm {
            throw ConfigurationError("the key is for \(self.algorithm), not \(algorithm)")
        }
    }

    /// Reads a PEM private key file; errors name the file.
    public static func load(file path: String, algorithm: TokenAlgorithm? = nil) throws(ConfigurationError) -> SigningKey {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 64 * 1024 else {
            throw ConfigurationError("cannot read private key file \(path)")
        }
        do {
            return try SigningKey(pem: String(decoding: data, as: UTF8.self), algorithm: algorithm)
        } catch {
            throw ConfigurationError("private key file \(path): \(error.description)")
        }
    }

    /// The public half, which verifies what this key signs.
    public func verificationKey(kid: String? = nil) throws(ConfigurationError) -> VerificationKey {
        switch self.material {
        case .rsa(let key): return try VerificationKey(material: .rsa(key.publicKey), kid: kid)
        case .p256(let key): return try VerificationKey(material: .p256(key.publicKey), kid: kid)
        case .ed25519(let key): return try VerificationKey(material: .ed25519(key.publicKey), kid: kid)
        }
    }

    /// The JWS signature of `signingInput`: PKCS#1 v1.5 for RSA, raw r || s for ECDSA (RFC 7518 §3).
    func signature(for signingInput: Data) throws -> Data {
        switch self.material {
        case .rsa(let key):
            return try key.signature(for: SHA256.hash(data: signingInput), padding: .insecurePKCS1v1_5).rawRepresentation
        case .p256(let key):
            return try key.signature(for: signingInput).rawRepresentation
        case .ed25519(let key):
            return try key.signature(for: signingInput)
        }
    }
}
