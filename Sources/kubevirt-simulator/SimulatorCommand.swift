import ArgumentParser
import Foundation
import KubeVirtSimulator

@main
struct SimulatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubevirt-simulator",
        abstract: "A stand-in for the Kubernetes API's KubeVirt VNC subresource, for tests, demos and benchmarks.")

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one (printed at start).")
    var port = 0

    @Option(help: "File holding the one accepted bearer token (re-read per request); omit to accept any.")
    var tokenFile: String?

    @Option(help: "Write the generated CA certificate here, for the proxy's --ca-file.")
    var caOut: String?

    @Option(help: "Serve this certificate chain (PEM) instead of generating one; needs --tls-key.")
    var tlsCert: String?

    @Option(help: "Private key (PEM) for --tls-cert.")
    var tlsKey: String?

    @Flag(help: "Plain ws:// instead of TLS.")
    var noTLS = false

    @Option(help: "A VMI: NS/NAME, NS/NAME=rfb, NS/NAME=echo or NS/NAME=HOST:PORT (a real VNC server). Repeatable.")
    var vmi: [String] = []

    @Option(help: "A VMI that exists but is not running (400). Repeatable.")
    var stoppedVMI: [String] = []

    @Option(help: "A namespace the proxy's service account may use (403 elsewhere). Repeatable; default all.")
    var grant: [String] = []

    func run() throws {
        var vmis: [SimulatorConfiguration.VMI] = []
        for argument in self.vmi {
            let (name, backendText) = argument.split(separator: "=", maxSplits: 1).map(String.init).pair
            guard let (namespace, vmiName) = Self.split(name), let backend = ConsoleBackend(argument: backendText ?? "rfb") else {
                throw ValidationError("--vmi must be NS/NAME[=rfb|echo|HOST:PORT], got \(argument)")
            }
            vmis.append(.init(namespace: namespace, name: vmiName, backend: backend))
        }
        for argument in self.stoppedVMI {
            guard let (namespace, vmiName) = Self.split(argument) else { throw ValidationError("--stopped-vmi must be NS/NAME") }
            vmis.append(.init(namespace: namespace, name: vmiName, phase: .notRunning))
        }
        let certificates: SimulatorCertificates?
        switch (self.tlsCert, self.tlsKey) {
        case (let cert?, let key?): certificates = try SimulatorCertificates.load(certificateFile: cert, keyFile: key, caFile: nil)
        case (nil, nil): certificates = nil
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
        let simulator = try KubeVirtSimulator(
            configuration: SimulatorConfiguration(
                host: self.host, port: self.port, useTLS: !self.noTLS, tokenFilePath: self.tokenFile,
                grantedNamespaces: self.grant.isEmpty ? nil : Set(self.grant), vmis: vmis),
            certificates: certificates)
        if let caOut = self.caOut { try simulator.certificates.writeCA(to: caOut) }
        FileHandle.standardOutput.write(Data("kubevirt-simulator listening on \(simulator.url) with \(vmis.count) VMI(s)\n".utf8))
        try simulator.wait()
    }

    private static func split(_ text: String) -> (String, String)? {
        let parts = text.split(separator: "/").map(String.init)
        return parts.count == 2 ? (parts[0], parts[1]) : nil
    }
}

private extension Array where Element == String {
    var pair: (String, String?) { (self[0], self.count > 1 ? self[1] : nil) }
}
