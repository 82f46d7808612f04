import Foundation
import JWTKit
import Testing
@testable import VNCProxy
import WebSocketSupport

@Suite("Token verification")
struct TokenVerifierTests {
    struct FixtureFile: Decodable {
        var generator: String
        var tokens: [Fixture]
    }

    struct Fixture: Decodable, Sendable, CustomTestStringConvertible {
        var name: String
        var token: String
        var secret: String
        var expect: String
        var namespace: String
        var allowed_vmi_names: [String]
        var testDescription: String { self.name }
    }

    static let fixtures: [Fixture] = {
        let url = Bundle.module.url(forResource: "Fixtures/laborchestrator-tokens", withExtension: "json")!
        return try! JSONDecoder().decode(FixtureFile.self, from: Data(contentsOf: url)).tokens
    }()

    @Test("Tokens minted by lab-orchestrator-lib-auth 2.2.0 verify; the expired one does not", arguments: fixtures)
    func laborchestratorFixture(_ fixture: Fixture) throws {
        let verifier = TokenVerifier(secret: fixture.secret)
        if fixture.expect == "valid" {
            let claims = try verifier.verify(fixture.token)
            #expect(claims.labInstance.namespaceName == fixture.namespace)
            #expect(claims.labInstance.allowedVMINames == fixture.allowed_vmi_names)
            #expect(claims.allows(vmName: fixture.allowed_vmi_names[0]))
            #expect(!claims.allows(vmName: "someone-else"))
        } else {
            #expect(throws: TokenError.expired) { try verifier.verify(fixture.token) }
        }
        #expect(throws: TokenError.badSignature) { try TokenVerifier(secret: "wrong").verify(fixture.token) }
    }

    @Test("Ids keep their type: int stays int, string stays string")
    func identifierTypes() throws {
        let byName = Dictionary(uniqueKeysWithValues: Self.fixtures.map { ($0.name, $0) })
        let ints = try TokenVerifier(secret: "fixture-secret").verify(byName["int-ids"]!.token)
        #expect(ints.id == .int(7))
        #expect(ints.labInstance.labID == .int(3))
        let strings = try TokenVerifier(secret: "fixture-secret").verify(byName["string-ids"]!.token)
        #expect(strings.id == .string("user-42"))
        #expect(strings.labInstance.labInstanceID == .string("inst-2"))
    }

    @Test("A fixture token opens a console through the live proxy")
    func fixtureThroughProxy() async throws {
        let fixture = try #require(Self.fixtures.first { $0.name == "int-ids" })
        try await ProxyHarness.with(
            vmis: [.init(namespace: fixture.namespace, name: "ubuntu")], grantedNamespaces: nil,
            adjust: { $0.secretKey = fixture.secret }
        ) { harness in
            let result = try await WebSocketClientProbe.rfb(port: harness.port, path: "/\(fixture.token)/ubuntu")
            #expect(result.width == 640)
        }
    }

    struct LabPayload: JWTPayload {
        struct LabInstance: Codable {
            var lab_id: Int
            var lab_instance_id: Int
            var namespace_name: String
            var allowed_vmi_names: [String]
        }
        var id: Int
        var exp: ExpirationClaim
        var lab_instance: LabInstance
        func verify(using algorithm: some JWTAlgorithm) throws { try self.exp.verifyNotExpired() }
    }

    @Test("A token signed by jwt-kit verifies: our HS256 agrees with an independent implementation")
    func jwtKitInterop() async throws {
        let secret = String(repeating: "k", count: 32)
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let token = try await keys.sign(LabPayload(
            id: 3, exp: .init(value: Date().addingTimeInterval(600)),
            lab_instance: .init(lab_id: 1, lab_instance_id: 2, namespace_name: "ns", allowed_vmi_names: ["a"])))
        let claims = try TokenVerifier(secret: secret).verify(token)
        #expect(claims.id == .int(3))
        #expect(claims.labInstance.allowedVMINames == ["a"])

        // And the other way round: jwt-kit accepts what TokenSigner writes.
        let ours = try TokenSigner(secret: secret).sign(namespace: "ns", vmNames: ["a"], lifetime: 600)
        let payload = try await keys.verify(ours, as: LabPayload.self)
        #expect(payload.lab_instance.namespace_name == "ns")
    }

    @Test("exp leeway and nbf are honoured")
    func timeClaims() throws {
        let signer = TokenSigner(secret: "s")
        let now = Date()
        let claims = TokenClaims(id: .int(1), exp: now.timeIntervalSince1970 - 3, nbf: now.timeIntervalSince1970 + 3,
                                 labInstance: .init(labID: .int(1), labInstanceID: .int(1), namespaceName: "ns", allowedVMINames: ["a"]))
        let token = try signer.sign(claims)
        #expect(throws: Never.self) { try TokenVerifier(secret: "s", leewaySeconds: 5).verify(token, now: now) }
        #expect(throws: TokenError.expired) { try TokenVerifier(secret: "s", leewaySeconds: 1).verify(token, now: now) }
        #expect(throws: TokenError.notYetValid) {
            try TokenVerifier(secret: "s", leewaySeconds: 1).verify(token, now: now.addingTimeInterval(-10))
        }
    }

    @Test("Structural garbage is malformed, never a crash", arguments: [
        "", ".", "..", "a.b.c", "a.b", "a.b.c.d", "!!!.???.***", "eyJhbGciOiJIUzI1NiJ9..", "eyJ9.eyJ9.eyJ9",
    ])
    func malformed(_ token: String) {
        #expect(throws: TokenError.self) { try TokenVerifier(secret: "s").verify(token) }
    }

    @Test("A huge allowed_vmi_names list is refused")
    func hugeAllowList() throws {
        let names = (0...TokenVerifier.maxAllowedNames).map { "vm\($0)" }
        let token = try TokenSigner(secret: "s").sign(namespace: "ns", vmNames: names, lifetime: 60)
        #expect(throws: TokenError.invalidClaims) { try TokenVerifier(secret: "s").verify(token) }
    }
}
