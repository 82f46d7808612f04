import ArgumentParser
import Foundation
import VNCProxy

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint an HS256 token in LabOrchestrator's layout and print it.")

    @Option(help: "Shared HS256 secret [SECRET_KEY].")
    var secret: String?

    @Option(help: "Namespace of the lab instance (the VMIs' namespace).")
    var namespace: String

    @Option(name: .customLong("vm"), help: "A VMI the token opens; repeat for several.")
    var vms: [String]

    @Option(help: "Lifetime in seconds.")
    var expiresIn = 3600

    @Option(help: "The user id claim (`id`).")
    var userID = "1"

    func run() throws {
        guard let secret = self.secret ?? Environment.string("SECRET_KEY") else {
            exitWithStartupError("no secret: set SECRET_KEY or pass --secret")
        }
        guard !self.vms.isEmpty else { exitWithStartupError("name at least one --vm") }
        let userID: Identifier = Int64(self.userID).map(Identifier.int) ?? .string(self.userID)
        let token = try TokenSigner(secret: secret).sign(
            userID: userID, namespace: self.namespace, vmNames: self.vms, lifetime: Double(self.expiresIn))
        writeOutput(token)
    }
}
