import _CryptoExtras
import Crypto
import Foundation
import JWTKit
import VNCProxy

/// A key pair of one type made with swift-crypto, as the PEM texts `openssl genpkey` and
/// `openssl pkey -pubout` would give an operator.
struct TestKeyPair: Sendable {
    let algorithm: TokenAlgorithm
    let privatePEM: String
    let publicPEM: String

    static func generate(_ algorithm: TokenAlgorithm) -> TestKeyPair {
        switch algorithm {
        case .rs256:
            let key = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
            return TestKeyPair(algorithm: algorithm, privatePEM: key.pemRepresentation, publicPEM: key.publicKey.pemRepresentation)
        case .es256:
            let key = P256.Signing.PrivateKey()
            return TestKeyPair(algorithm: algorithm, privatePEM: key.pemRepresentation, publicPEM: key.publicKey.pemRepresentation)
        case .edDSA:
            let key = Curve25519.Signing.PrivateKey()
            return TestKeyPair(algorithm: algorithm, privatePEM: key.pemRepresentation, publicPEM: key.publicKey.pemRepresentation)
        case .hs256:
            preconditionFailure("HS256 has no key pair")
        }
    }

    /// Two pairs of each asymmetric type, made once: RSA key generation takes a while in a debug build.
    static let pairs: [TokenAlgorithm: [TestKeyPair]] = Dictionary(uniqueKeysWithValues: [TokenAlgorithm.rs256, .es256, .edDSA].map {
        ($0, [generate($0), generate($0)])
    })

    static func first(_ algorithm: TokenAlgorithm) -> TestKeyPair { pairs[algorithm]![0] }
    static func second(_ algorithm: TokenAlgorithm) -> TestKeyPair { pairs[algorithm]![1] }

    func signer(kid: String? = nil) throws -> TokenSigner {
        TokenSigner(key: try SigningKey(pem: self.privatePEM), kid: kid)
    }

    func verificationKey(kid: String? = nil) throws -> VerificationKey {
        try VerificationKey(pem: self.publicPEM, kid: kid)
    }

    /// The public key as jwt-kit writes a JWK: an encoding independent of the proxy's.
    func jwk(kid: String?) throws -> JWK {
        let identifier = kid.map { JWKIdentifier(string: $0) }
        switch self.algorithm {
        case .rs256:
            let primitives = try Insecure.RSA.PublicKey(pem: self.publicPEM).getKeyPrimitives()
            return .rsa(nil, identifier: identifier, modulus: Self.base64URL(primitives.modulus),
                        exponent: Self.base64URL(primitives.publicExponent))
        case .es256:
            let parameters = try ES256PublicKey(pem: self.publicPEM).parameters!
            return .ecdsa(nil, identifier: identifier, x: parameters.x, y: parameters.y, curve: .p256)
        case .edDSA:
            let key = try EdDSA.PublicKey(pem: self.publicPEM)
            return .octetKeyPair(nil, identifier: identifier, x: Self.base64URL(key.rawRepresentation), y: nil, curve: .ed25519)
        case .hs256:
            preconditionFailure("HS256 has no public key")
        }
    }

    /// jwt-kit's signer for this private key, to mint tokens independently of `TokenSigner`.
    func jwtKitKeys(kid: String?) async throws -> JWTKeyCollection {
        let keys = JWTKeyCollection()
        let identifier = kid.map { JWKIdentifier(string: $0) }
        switch self.algorithm {
        case .rs256:
            await keys.add(rsa: try Insecure.RSA.PrivateKey(pem: self.privatePEM), digestAlgorithm: .sha256, kid: identifier)
        case .es256:
            await keys.add(ecdsa: try ES256PrivateKey(pem: self.privatePEM), kid: identifier)
        case .edDSA:
            await keys.add(eddsa: try EdDSA.PrivateKey(pem: self.privatePEM), kid: identifier)
        case .hs256:
            preconditionFailure("HS256 has no key pair")
        }
        return keys
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// A temporary directory for key and JWKS files, removed by `remove()`.
struct TemporaryDirectory: Sendable {
    let url: URL

    init() throws {
        self.url = FileManager.default.temporaryDirectory.appendingPathComponent("vnc-proxy-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.url, withIntermediateDirectories: true)
    }

    /// Writes `text` to `name` and returns the file's path.
    @discardableResult
    func write(_ text: String, to name: String) throws -> String {
        let path = self.url.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func remove() {
        try? FileManager.default.removeItem(at: self.url)
    }
}
