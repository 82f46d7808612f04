import _CryptoExtras
import Crypto
import Foundation
import JWTKit
import Logging
import Testing
@testable import VNCProxy

@Suite("Asymmetric tokens: RS256, ES256 and EdDSA with public keys and JWKS files")
struct AsymmetricTokenTests {
    static let algorithms: [TokenAlgorithm] = [.rs256, .es256, .edDSA]

    static func sign(_ signer: TokenSigner, audience: [String] = [], issuer: String? = nil) throws -> String {
        try signer.sign(userID: .int(42), namespace: ProxyHarness.namespace, vmNames: ["vm1"], lifetime: 600,
                        audience: audience, issuer: issuer)
    }

    static let validPayload = #"{"exp":4102444800,"id":1,"lab_instance":{"allowed_vmi_names":["vm1"],"lab_id":1,"lab_instance_id":1,"namespace_name":"lab-ns"}}"#

    /// A token with a header of the caller's choosing, signed over it by `signature`: the forgeries.
    static func forged(header: String, payload: String = validPayload, signature: (Data) throws -> Data) rethrows -> String {
        let input = TestKeyPair.base64URL(Data(header.utf8)) + "." + TestKeyPair.base64URL(Data(payload.utf8))
        return input + "." + TestKeyPair.base64URL(try signature(Data(input.utf8)))
    }

    /// The refusal code the client would see, or nil when the token verifies.
    static func refusal(_ verifier: TokenVerifier, _ token: String) -> String? {
        do {
            _ = try verifier.verify(token)
            return nil
        } catch {
            return error.proxyError.code
        }
    }

    static func jwks(_ entries: [JWK]) throws -> String {
        String(decoding: try JSONEncoder().encode(JWKS(keys: entries)), as: UTF8.self)
    }

    /// Replaces a file and moves its modification time forward, as a ConfigMap update would.
    static func rewrite(_ text: String, at path: String, secondsLater: Double) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(secondsLater)], ofItemAtPath: path)
    }

    // MARK: - Each algorithm

    @Test("A token signed by TokenSigner verifies with the public key read from a PEM file", arguments: algorithms)
    func signerRoundTrip(_ algorithm: TokenAlgorithm) throws {
        let pair = TestKeyPair.first(algorithm)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let key = try VerificationKey.load(file: try directory.write(pair.publicPEM, to: "public.pem"))
        let signingKey = try SigningKey.load(file: try directory.write(pair.privatePEM, to: "private.pem"))
        #expect(key.algorithm == algorithm)
        #expect(signingKey.algorithm == algorithm)

        let token = try Self.sign(TokenSigner(key: signingKey))
        let claims = try TokenVerifier(secret: nil, publicKeys: [key]).verify(token)
        #expect(claims.id == .int(42))
        #expect(claims.labInstance.namespaceName == ProxyHarness.namespace)
        #expect(claims.allows(vmName: "vm1"))
    }

    @Test("jwt-kit and the proxy agree: each verifies what the other signs", arguments: algorithms)
    func jwtKitInterop(_ algorithm: TokenAlgorithm) async throws {
        let pair = TestKeyPair.first(algorithm)
        let jwtKit = try await pair.jwtKitKeys(kid: "k1")
        let theirs = try await jwtKit.sign(TokenVerifierTests.LabPayload(
            id: 3, exp: .init(value: Date().addingTimeInterval(600)),
            lab_instance: .init(lab_id: 1, lab_instance_id: 2, namespace_name: "ns", allowed_vmi_names: ["a"])), kid: "k1")
        let claims = try TokenVerifier(secret: nil, publicKeys: [pair.verificationKey(kid: "k1")]).verify(theirs)
        #expect(claims.id == .int(3))
        #expect(claims.labInstance.allowedVMINames == ["a"])

        let ours = try Self.sign(pair.signer(kid: "k1"))
        let payload = try await jwtKit.verify(ours, as: TokenVerifierTests.LabPayload.self)
        #expect(payload.lab_instance.namespace_name == ProxyHarness.namespace)
    }

    @Test("A token signed by another key of the same type has a bad signature", arguments: algorithms)
    func wrongKey(_ algorithm: TokenAlgorithm) throws {
        let verifier = TokenVerifier(secret: nil, publicKeys: [try TestKeyPair.first(algorithm).verificationKey()])
        let token = try Self.sign(TestKeyPair.second(algorithm).signer())
        #expect(throws: TokenError.badSignature) { try verifier.verify(token) }
    }

    // MARK: - Algorithm confusion

    @Test("HS256 signed with the public key's PEM as the secret is never checked against the key", arguments: algorithms)
    func hs256WithPublicKeyAsSecret(_ algorithm: TokenAlgorithm) throws {
        let pair = TestKeyPair.first(algorithm)
        let forged = try Self.sign(TokenSigner(secret: pair.publicPEM))
        let keysOnly = TokenVerifier(secret: nil, publicKeys: [try pair.verificationKey()])
        #expect(throws: TokenError.algorithmNotAllowed("HS256", accepted: [algorithm.rawValue])) { try keysOnly.verify(forged) }
        // With a secret configured too, HS256 is checked against the secret, and only against it.
        let both = TokenVerifier(secret: "the-real-secret", publicKeys: [try pair.verificationKey()])
        #expect(throws: TokenError.badSignature) { try both.verify(forged) }
    }

    @Test("A header alg other than the key's pinned one is refused, even when that key signed it", arguments: algorithms)
    func headerAlgorithmMustMatchKey(_ algorithm: TokenAlgorithm) throws {
        let pair = TestKeyPair.first(algorithm)
        let signingKey = try SigningKey(pem: pair.privatePEM)
        for other in Self.algorithms where other != algorithm {
            let token = try Self.forged(header: #"{"alg":"\#(other)","kid":"ours"}"#) { try signingKey.signature(for: $0) }
            // Only our key is configured: nothing is pinned to the header's algorithm.
            let alone = TokenVerifier(secret: nil, publicKeys: [try pair.verificationKey(kid: "ours")])
            #expect(throws: TokenError.algorithmNotAllowed(other.rawValue, accepted: [algorithm.rawValue])) { try alone.verify(token) }
            // A key of the header's type is configured too, but the kid names ours.
            let mixed = TokenVerifier(secret: nil, publicKeys: [
                try pair.verificationKey(kid: "ours"), try TestKeyPair.first(other).verificationKey(kid: "theirs"),
            ])
            #expect(Self.refusal(mixed, token) == "token_algorithm_not_allowed")
        }
    }

    @Test("An RS256 header is never checked against the secret, nor an HS256 one against a key")
    func secretAndKeysStayApart() throws {
        let rsa = TestKeyPair.first(.rs256)
        let hmacSigned = Self.forged(header: #"{"alg":"RS256"}"#) {
            Data(HMAC<SHA256>.authenticationCode(for: $0, using: SymmetricKey(data: Data("secret".utf8))))
        }
        #expect(throws: TokenError.algorithmNotAllowed("RS256")) { try TokenVerifier(secret: "secret").verify(hmacSigned) }
        let both = TokenVerifier(secret: "secret", publicKeys: [try rsa.verificationKey()])
        #expect(throws: TokenError.badSignature) { try both.verify(hmacSigned) }
        // A real RS256 token, and a secret-only verifier: refused by algorithm, as before public keys existed.
        #expect(throws: TokenError.algorithmNotAllowed("RS256")) {
            try TokenVerifier(secret: "secret").verify(try Self.sign(rsa.signer()))
        }
    }

    @Test("alg none (in any spelling) is refused by every configuration")
    func none() throws {
        let pair = TestKeyPair.first(.es256)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let jwks = try JWKSFile(path: try directory.write(try Self.jwks([pair.jwk(kid: "k")]), to: "jwks.json"))
        let verifiers = [
            TokenVerifier(secret: "secret"),
            TokenVerifier(secret: nil, publicKeys: [try pair.verificationKey()]),
            TokenVerifier(secret: "secret", publicKeys: [try pair.verificationKey()], jwks: jwks),
        ]
        for alg in ["none", "None", "NONE", ""] {
            let unsigned = Self.forged(header: #"{"alg":"\#(alg)","typ":"JWT"}"#) { _ in Data() }
            let withKid = Self.forged(header: #"{"alg":"\#(alg)","kid":"k"}"#) { _ in Data() }
            for verifier in verifiers {
                #expect(Self.refusal(verifier, unsigned) == "token_algorithm_not_allowed", "alg \(alg)")
                #expect(Self.refusal(verifier, withKid) == "token_algorithm_not_allowed", "alg \(alg) with kid")
            }
        }
    }

    @Test("HS256 tokens are read as before: kid, typ, iss and aud of any shape change nothing unless checked")
    func oddFieldsAsBefore() throws {
        let odd = Self.validPayload.replacingOccurrences(of: #""id":1"#, with: #""id":1,"iss":5,"aud":{"x":1}"#)
        let hs256 = Self.forged(header: #"{"alg":"HS256","kid":5,"typ":["JWT"]}"#, payload: odd) {
            Data(HMAC<SHA256>.authenticationCode(for: $0, using: SymmetricKey(data: Data("secret".utf8))))
        }
        let pair = TestKeyPair.first(.es256)
        #expect(Self.refusal(TokenVerifier(secret: "secret"), hs256) == nil)
        #expect(Self.refusal(TokenVerifier(secret: "secret", publicKeys: [try pair.verificationKey()]), hs256) == nil)
        #expect(Self.refusal(TokenVerifier(secret: "secret", publicKeys: [], audience: "vnc"), hs256) == "token_claims_invalid")

        let signingKey = try SigningKey(pem: pair.privatePEM)
        let es256 = try Self.forged(header: #"{"alg":"ES256","kid":5}"#) { try signingKey.signature(for: $0) }
        #expect(Self.refusal(TokenVerifier(secret: nil, publicKeys: [try pair.verificationKey()]), es256) == "token_malformed")
    }

    @Test("HS256 tokens are byte for byte what TokenSigner wrote before keys, kid, aud and iss")
    func hs256BytesUnchanged() throws {
        let claims = TokenClaims(id: .int(7), exp: 4102444800, labInstance: .init(
            labID: .int(1), labInstanceID: .int(2), namespaceName: "ns", allowedVMINames: ["a", "b"]))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let input = TestKeyPair.base64URL(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + TestKeyPair.base64URL(try encoder.encode(claims))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: Data("s".utf8)))
        #expect(try TokenSigner(secret: "s").sign(claims) == input + "." + TestKeyPair.base64URL(Data(mac)))
    }

    // MARK: - Key selection

    @Test("A kid selects its key; without a kid every key of the header's algorithm is tried")
    func kidSelection() throws {
        let a = TestKeyPair.first(.es256), b = TestKeyPair.second(.es256)
        let verifier = TokenVerifier(secret: nil, publicKeys: [try a.verificationKey(kid: "a"), try b.verificationKey(kid: "b")])
        #expect(Self.refusal(verifier, try Self.sign(a.signer(kid: "a"))) == nil)
        #expect(Self.refusal(verifier, try Self.sign(b.signer(kid: "b"))) == nil)
        // The kid names b: a's signature is not tried against a.
        #expect(Self.refusal(verifier, try Self.sign(a.signer(kid: "b"))) == "token_invalid")
        #expect(Self.refusal(verifier, try Self.sign(b.signer())) == nil)
        #expect(Self.refusal(verifier, try Self.sign(TestKeyPair.first(.edDSA).signer())) == "token_algorithm_not_allowed")
    }

    @Test("A kid that names no key is refused as token_key_unknown, 401")
    func unknownKid() throws {
        let pair = TestKeyPair.first(.edDSA)
        let verifier = TokenVerifier(secret: nil, publicKeys: [try pair.verificationKey(kid: "known")])
        #expect(throws: TokenError.keyUnknown) { try verifier.verify(try Self.sign(pair.signer(kid: "unknown"))) }
        #expect(TokenError.keyUnknown.proxyError.status == .unauthorized)
        #expect(TokenError.keyUnknown.proxyError.code == "token_key_unknown")
    }

    @Test("A key without a kid is named by its RFC 7638 thumbprint; KID=PATH names it")
    func derivedAndGivenKids() throws {
        // RFC 7638 §3.1: the example key and its thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        let set = try KeySet(jwks: Data(#"{"keys":[{"kty":"RSA","n":"\#(n)","e":"AQAB"}]}"#.utf8))
        #expect(set.keys.map(\.kid) == ["NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"])

        let pair = TestKeyPair.first(.edDSA)
        let derived = try pair.verificationKey()
        #expect(derived.kid == (try TestKeyPair.first(.edDSA).verificationKey().kid), "stable")
        #expect(derived.kid != (try TestKeyPair.second(.edDSA).verificationKey().kid))
        #expect(Self.refusal(TokenVerifier(secret: nil, publicKeys: [derived]), try Self.sign(pair.signer(kid: derived.kid))) == nil)

        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write(pair.publicPEM, to: "a=b.pem")
        #expect(try VerificationKey.load(reference: "mine=\(path)").kid == "mine")
        // A `=` after a `/` belongs to the path.
        #expect(try VerificationKey.load(reference: path).kid == derived.kid)
    }

    // MARK: - Claims

    @Test("aud: a configured audience must be in the token's aud, a string or an array; missing is refused")
    func audience() throws {
        let pair = TestKeyPair.first(.es256)
        let verifier = TokenVerifier(secret: "secret", publicKeys: [try pair.verificationKey()], audience: "vnc-proxy")
        let single = try Self.sign(pair.signer(), audience: ["vnc-proxy"])
        #expect(String(decoding: Base64URL.decode(single.split(separator: ".")[1])!, as: UTF8.self).contains(#""aud":"vnc-proxy""#))
        #expect(Self.refusal(verifier, single) == nil)
        #expect(Self.refusal(verifier, try Self.sign(pair.signer(), audience: ["other", "vnc-proxy"])) == nil)
        #expect(Self.refusal(verifier, try Self.sign(pair.signer(), audience: ["other"])) == "token_audience_invalid")
        #expect(Self.refusal(verifier, try Self.sign(pair.signer(), audience: ["other", "more"])) == "token_audience_invalid")
        #expect(Self.refusal(verifier, try Self.sign(pair.signer())) == "token_audience_invalid")
        // The check holds for every token, HS256 ones too.
        #expect(Self.refusal(verifier, try Self.sign(TokenSigner(secret: "secret"))) == "token_audience_invalid")
        #expect(Self.refusal(verifier, try Self.sign(TokenSigner(secret: "secret"), audience: ["vnc-proxy"])) == nil)
        // Not configured: aud is not looked at.
        let unchecked = TokenVerifier(secret: nil, publicKeys: [try pair.verificationKey()])
        #expect(Self.refusal(unchecked, try Self.sign(pair.signer(), audience: ["other"])) == nil)
        #expect(TokenError.audienceInvalid.proxyError.status == .unauthorized)
    }

    @Test("iss: a configured issuer must equal the token's iss; missing is refused")
    func issuer() throws {
        let pair = TestKeyPair.first(.rs256)
        let verifier = TokenVerifier(secret: nil, publicKeys: [try pair.verificationKey()], issuer: "https://lab.example.org")
        #expect(Self.refusal(verifier, try Self.sign(pair.signer(), issuer: "https://lab.example.org")) == nil)
        #expect(Self.refusal(verifier, try Self.sign(pair.signer(), issuer: "https://evil.example.org")) == "token_issuer_invalid")
        #expect(Self.refusal(verifier, try Self.sign(pair.signer())) == "token_issuer_invalid")
        #expect(TokenError.issuerInvalid.proxyError.status == .unauthorized)
    }

    @Test("A secret and public keys together: HS256 verifies with the secret, the others with their keys")
    func secretAndKeysTogether() throws {
        let keys = try Self.algorithms.map { try TestKeyPair.first($0).verificationKey() }
        let verifier = TokenVerifier(secret: "secret", publicKeys: keys)
        #expect(Self.refusal(verifier, try Self.sign(TokenSigner(secret: "secret"))) == nil)
        for algorithm in Self.algorithms {
            #expect(Self.refusal(verifier, try Self.sign(TestKeyPair.first(algorithm).signer())) == nil, "\(algorithm)")
        }
        #expect(Self.refusal(verifier, try Self.sign(TokenSigner(secret: "wrong"))) == "token_invalid")
    }

    // MARK: - JWKS files

    @Test("A JWKS file is re-read when it changes: the new key verifies, the removed one no longer does")
    func jwksReload() throws {
        let old = TestKeyPair.first(.es256), new = TestKeyPair.second(.es256)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write(try Self.jwks([old.jwk(kid: "old")]), to: "jwks.json")
        let file = try JWKSFile(path: path)
        let verifier = TokenVerifier(secret: nil, publicKeys: [], jwks: file)
        let oldToken = try Self.sign(old.signer(kid: "old")), newToken = try Self.sign(new.signer(kid: "new"))
        #expect(Self.refusal(verifier, oldToken) == nil)
        #expect(Self.refusal(verifier, newToken) == "token_key_unknown")
        #expect(!file.reloadIfChanged(), "an unchanged file is not read again")

        try Self.rewrite(try Self.jwks([new.jwk(kid: "new")]), at: path, secondsLater: 10)
        #expect(file.reloadIfChanged())
        #expect(Self.refusal(verifier, newToken) == nil)
        #expect(Self.refusal(verifier, oldToken) == "token_key_unknown")
    }

    @Test("A broken new JWKS file keeps the last good keys and logs one warning per change")
    func brokenJWKSKeepsLastGood() throws {
        let good = TestKeyPair.first(.rs256)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write(try Self.jwks([good.jwk(kid: "good")]), to: "jwks.json")
        let logs = CapturedLogs()
        let file = try JWKSFile(path: path, logger: Logger(label: "test") { _ in logs.handler() })
        let verifier = TokenVerifier(secret: nil, publicKeys: [], jwks: file)
        let token = try Self.sign(good.signer(kid: "good"))
        let warnings = { logs.all.filter { $0.hasPrefix("warning") } }

        let broken = [
            "{not json",
            #"{"keys":[]}"#,
            #"{"keys":[{"kty":"EC","crv":"P-384","kid":"p384","x":"AAAA","y":"AAAA"}]}"#,
            #"{"keys":[{"kty":"EC","crv":"P-256","kid":"bad","x":"AAAA","y":"AAAA"}]}"#,
        ]
        for (index, text) in broken.enumerated() {
            try Self.rewrite(text, at: path, secondsLater: Double(10 * (index + 1)))
            #expect(!file.reloadIfChanged(), "\(text)")
            #expect(!file.reloadIfChanged(), "read once per change")
            #expect(Self.refusal(verifier, token) == nil, "the last good key still verifies after \(text)")
            #expect(warnings().count == index + 1)
        }
        try FileManager.default.removeItem(atPath: path)
        #expect(!file.reloadIfChanged())
        #expect(Self.refusal(verifier, token) == nil)
        #expect(warnings().last?.contains("keeping the last good keys") == true)
        #expect(!logs.all.contains { $0.contains(token) })
    }

    @Test("JWKS entries for other uses or key types are skipped; an alg must match the key type")
    func jwksEntriesSkipped() throws {
        let es = TestKeyPair.first(.es256), rsa = TestKeyPair.first(.rs256)
        var encryption = try rsa.jwk(kid: "enc")
        encryption.algorithm = .rsaOAEP
        var mislabelled = try es.jwk(kid: "mislabelled")
        mislabelled.algorithm = .rs256
        var labelled = try es.jwk(kid: "labelled")
        labelled.algorithm = .es256
        let set = try KeySet(jwks: Data(try Self.jwks([encryption, mislabelled, labelled]).utf8))
        #expect(set.keys.map(\.kid) == ["labelled"])
        #expect(set.skipped.count == 2)
    }

    // MARK: - Start-up

    @Test("Key files that cannot work stop the start with one clear line")
    func startupErrors() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let shortRSA = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024))
        let cases: [(publicKey: String?, jwks: String?, message: String)] = [
            ("/nonexistent/key.pem", nil, "cannot read public key file /nonexistent/key.pem"),
            (try directory.write(TestKeyPair.first(.es256).privatePEM, to: "private.pem"), nil, "a private key, not a public key"),
            (try directory.write("hello", to: "garbage.pem"), nil, "not a PEM public key"),
            (try directory.write(P384.Signing.PrivateKey().publicKey.pemRepresentation, to: "p384.pem"), nil, "unsupported key type P-384"),
            (try directory.write(shortRSA.publicKey.pemRepresentation, to: "rsa1024.pem"), nil, "1024 bits is too short"),
            ("=\(directory.url.path)/p384.pem", nil, "the kid before = is empty"),
            (nil, try directory.write("[]", to: "array.json"), "not a JWKS document"),
            (nil, "/nonexistent/jwks.json", "JWKS file /nonexistent/jwks.json: cannot read it"),
        ]
        for testCase in cases {
            let proxy = try WebsocketProxy(configuration: .init(
                remoteURL: "ws://127.0.0.1:1", localDevMode: true, host: "127.0.0.1", port: 0,
                publicKeyPaths: testCase.publicKey.map { [$0] } ?? [], jwksFilePath: testCase.jwks))
            let error = #expect(throws: ConfigurationError.self) { try proxy.runInThread() }
            #expect(error?.description.contains(testCase.message) == true, "\(error?.description ?? "no error")")
            #expect(error?.description.contains("\n") == false)
        }
        let none = #expect(throws: ConfigurationError.self) {
            try WebsocketProxy(configuration: .init(remoteURL: "ws://127.0.0.1:1", localDevMode: true))
        }
        #expect(none?.description == "no key to verify tokens with: set a secret key, public keys or a JWKS file")
    }

    // MARK: - Over sockets

    @Test("Over sockets: an ES256 token opens a session; one signed by another key gets 401 with its JSON body")
    func throughProxy() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let publicKey = try directory.write(TestKeyPair.first(.es256).publicPEM, to: "public.pem")
        try await ProxyHarness.with(adjust: {
            $0.secretKey = nil
            $0.publicKeyPaths = [publicKey]
        }) { harness in
            let token = try Self.sign(TestKeyPair.first(.es256).signer())
            let session = try await WebSocketClientProbe.rfb(port: harness.port, path: "/\(token)/vm1")
            #expect(session.width == 640)

            let forged = try Self.sign(TestKeyPair.second(.es256).signer())
            let refused = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(forged)/vm1"))
            #expect(refused.status == 401, "\(refused.raw)")
            #expect(refused.raw.lowercased().contains("content-type: application/json"))
            #expect(refused.errorCode == "token_invalid")
            #expect(refused.reason == "token signature does not verify")

            // No secret is configured: LabOrchestrator's HS256 tokens have nothing to verify with.
            let hs256 = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(try harness.token())/vm1"))
            #expect(hs256.status == 401)
            #expect(hs256.errorCode == "token_algorithm_not_allowed")
            #expect(hs256.reason == "token algorithm HS256 is not accepted; ES256 is required")
            #expect(!harness.logs.all.contains { $0.contains(token) || $0.contains(forged) })
        }
    }

    @Test("Over sockets: a running proxy takes up a rotated JWKS file within seconds")
    func jwksRotationThroughProxy() async throws {
        let old = TestKeyPair.first(.edDSA), new = TestKeyPair.second(.edDSA)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write(try Self.jwks([old.jwk(kid: "old")]), to: "jwks.json")
        try await ProxyHarness.with(adjust: {
            $0.secretKey = nil
            $0.jwksFilePath = path
        }) { harness in
            let oldToken = try Self.sign(old.signer(kid: "old")), newToken = try Self.sign(new.signer(kid: "new"))
            let status = { (token: String) in
                try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(token)/vm1"))
            }
            #expect(try await status(oldToken).status == 101)
            #expect(try await status(newToken).errorCode == "token_key_unknown")

            try Self.rewrite(try Self.jwks([new.jwk(kid: "new")]), at: path, secondsLater: 10)
            var taken = false
            for _ in 0..<50 where !taken {
                try await Task.sleep(nanoseconds: 200_000_000)
                taken = try await status(newToken).status == 101
            }
            #expect(taken, "the new key verifies within 10 s")
            #expect(try await status(oldToken).errorCode == "token_key_unknown")
            #expect(harness.logs.all.contains { $0.contains("JWKS file reloaded") })
        }
    }
}
