import ArgumentParser
import Foundation
import VNCProxy

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint a token in LabOrchestrator's layout and print it: HS256 with the shared secret, or RS256, ES256 or EdDSA with a private key.")

    @Option(help: "Shared HS256 secret [SECRET_KEY].")
    var secret: String?

    @Option(help: "PEM private key (RSA, P-256 or Ed25519) to sign with instead of the secret; its type gives the algorithm.")
    var privateKey: String?

    @Option(help: "HS256, RS256, ES256 or EdDSA: checked against the secret or the key's type.")
    var alg: String?

    @Option(help: "Key id for the header, for a verifier that holds several keys.")
    var kid: String?

    @Option(help: "Audience claim (`aud`); repeat for several.")
    var aud: [String] = []

    @Option(help: "Issuer claim (`iss`).")
    var iss: String?

    @Option(help: "Namespace of the lab instance (the VMIs' namespace).")
    var namespace: String

    @Option(name: .customLong("vm"), help: "A VMI the token opens; repeat for several.")
    var vms: [String]

    @Option(help: "Lifetime in seconds.")
    var expiresIn = 3600

    @Option(help: "The user id claim (`id`).")
    var userID = "1"

    func run() throws {
        guard !self.vms.isEmpty else { exitWithStartupError("name at least one --vm") }
        let signer: TokenSigner
        do {
            signer = try self.makeSigner()
        } catch {
            exitWithStartupError(error.description)
        }
        let userID: Identifier = Int64(self.userID).map(Identifier.int) ?? .string(self.userID)
        let token = try signer.sign(
            userID: userID, namespace: self.namespace, vmNames: self.vms, lifetime: Double(self.expiresIn),
            audience: self.aud, issuer: self.iss)
        writeOutput(token)
    }

    private func makeSigner() throws(ConfigurationError) -> TokenSigner {
        let algorithm = try self.alg.map { name throws(ConfigurationError) in
            guard let algorithm = TokenAlgorithm(rawValue: name) else {
                throw ConfigurationError("--alg must be HS256, RS256, ES256 or EdDSA, not \(name)")
            }
            return algorithm
        }
        if let path = self.privateKey {
            guard self.secret == nil else { throw ConfigurationError("sign with --secret or --private-key, not both") }
            return TokenSigner(key: try SigningKey.load(file: path, algorithm: algorithm), kid: self.kid)
        }
        guard let secret = self.secret ?? Environment.string("SECRET_KEY") else {
            throw ConfigurationError("no secret: set SECRET_KEY or pass --secret, or sign with --private-key")
        }
        if let algorithm, algorithm != .hs256 {
            throw ConfigurationError("a secret signs HS256; \(algorithm) needs --private-key")
        }
        return TokenSigner(secret: secret, kid: self.kid)
    }
}
