import _CryptoExtras
import Crypto
import Foundation

/// One public key in JWK form (RFC 7517), with the members of the key types the proxy verifies with.
struct JSONWebKey: Codable, Sendable, Equatable {
    var kty: String
    var kid: String?
    var alg: String?
    var use: String?
    var crv: String?
    var n: String?
    var e: String?
    var x: String?
    var y: String?

    /// What a JWKS entry turns into: a key, or the reason the proxy does not use it.
    enum Decoded {
        case key(VerificationKey)
        case skipped(String)
    }

    /// The public members of a key, as its JWK carries them.
    init(_ material: VerificationKey.Material) throws(ConfigurationError) {
        switch material {
        case .rsa(let key):
            guard let primitives = try? key.getKeyPrimitives() else {
                throw ConfigurationError("cannot read the modulus and exponent of an RSA key")
            }
            self.init(kty: "RSA", n: Base64URL.encode(primitives.modulus), e: Base64URL.encode(primitives.publicExponent))
        case .p256(let key):
            let point = key.rawRepresentation  // x || y, 32 bytes each
            self.init(kty: "EC", crv: "P-256", x: Base64URL.encode(point.prefix(32)), y: Base64URL.encode(point.suffix(32)))
        case .ed25519(let key):
            self.init(kty: "OKP", crv: "Ed25519", x: Base64URL.encode(key.rawRepresentation))
        }
    }

    init(kty: String, kid: String? = nil, alg: String? = nil, use: String? = nil, crv: String? = nil,
         n: String? = nil, e: String? = nil, x: String? = nil, y: String? = nil) {
        self.kty = kty
        self.kid = kid
        self.alg = alg
        self.use = use
        self.crv = crv
        self.n = n
        self.e = e
        self.x = x
        self.y = y
    }

    /// The key this JWK describes. The algorithm comes from the key type; an `alg` member may only
    /// confirm it. Keys for other purposes or types are skipped; a malformed key of ours throws.
    func decode() throws(ConfigurationError) -> Decoded {
        if let use = self.use, use != "sig" { return .skipped("use \(use.prefix(16))") }
        guard let pinned = self.pinnedAlgorithm else {
            return .skipped("key type \(self.kty.prefix(8)) \((self.crv ?? "").prefix(16))")
        }
        if let alg = self.alg, alg != pinned.rawValue { return .skipped("algorithm \(alg.prefix(16))") }
        return .key(try VerificationKey(material: self.material(), kid: self.kid))
    }

    /// The algorithm the key type pins; nil for a type the proxy does not verify with.
    private var pinnedAlgorithm: TokenAlgorithm? {
        switch (self.kty, self.crv) {
        case ("RSA", _): return .rs256
        case ("EC", "P-256"): return .es256
        case ("OKP", "Ed25519"): return .edDSA
        default: return nil
        }
    }

    /// The key itself; only called for a type `pinnedAlgorithm` knows.
    private func material() throws(ConfigurationError) -> VerificationKey.Material {
        switch self.kty {
        case "RSA":
            guard let n = self.member(self.n), let e = self.member(self.e),
                  let key = try? _RSA.Signing.PublicKey(n: n, e: e) else {
                throw self.malformed("an RSA key needs n and e, of 2048 bits or more")
            }
            return .rsa(key)
        case "EC":
            guard let x = self.member(self.x, length: 32), let y = self.member(self.y, length: 32),
                  let key = try? P256.Signing.PublicKey(rawRepresentation: x + y) else {
                throw self.malformed("a P-256 key needs x and y, 32 bytes each, of a point on the curve")
            }
            return .p256(key)
        default:
            guard let x = self.member(self.x, length: 32), let key = try? Curve25519.Signing.PublicKey(rawRepresentation: x) else {
                throw self.malformed("an Ed25519 key needs x of 32 bytes")
            }
            return .ed25519(key)
        }
    }

    /// RFC 7638 thumbprint: SHA-256 over the required members, sorted by name, without whitespace.
    func thumbprint() -> String {
        var required = self
        required.kid = nil
        required.alg = nil
        required.use = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encoding a struct of optional strings cannot fail.
        let canonical = try! encoder.encode(required)
        return Base64URL.encode(Data(SHA256.hash(data: canonical)))
    }

    private func member(_ value: String?, length: Int? = nil) -> Data? {
        guard let value, let data = Base64URL.decode(value), !data.isEmpty else { return nil }
        if let length, data.count != length { return nil }
        return data
    }

    private func malformed(_ reason: String) -> ConfigurationError {
        ConfigurationError("key \(self.kid.map { String($0.prefix(64)) } ?? "without kid"): \(reason)")
    }
}
