import Foundation
import Testing
import VNCProxy

/// The `vnc-proxy` binary as a user runs it.
@Suite("vnc-proxy command line")
struct CLITests {
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vnc-proxy")
    }

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the binary to completion on a Dispatch thread: waiting for a process must not hold one of
    /// the few cooperative threads the parallel tests share.
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: TimeInterval = 60) async throws -> Run {
        try await offCooperativePool { try Self.runBlocking(arguments, environment: environment, timeout: timeout) }
    }

    private static func runBlocking(_ arguments: [String], environment: [String: String], timeout: TimeInterval) throws -> Run {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = arguments
        process.environment = ["PATH": "/usr/bin:/bin"].merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let killer = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        killer.cancel()
        return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                   stderr: String(decoding: stderr, as: UTF8.self))
    }

    @Test("The binary was built next to the tests")
    func binaryExists() {
        #expect(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build it with swift build first")
    }

    @Test("serve without a secret: one line on stderr, exit code 2")
    func missingSecret() async throws {
        let run = try await Self.run(["serve"])
        #expect(run.status == 2)
        #expect(run.stderr == "vnc-proxy: error: no secret key: set SECRET_KEY or pass --secret-key (or --public-key or --jwks-file)\n")
    }

    @Test("serve with an unreadable CA file: one line on stderr, exit code 2")
    func unreadableCA() async throws {
        let run = try await Self.run(["serve", "--ca-file", "/nonexistent/ca.crt", "--port", "0"],
                               environment: ["SECRET_KEY": "s", "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"])
        #expect(run.status == 2)
        #expect(run.stderr.hasPrefix("vnc-proxy: error: cannot read CA file /nonexistent/ca.crt"))
        #expect(run.stderr.split(separator: "\n").count == 1)
    }

    @Test("serve --web with a missing directory: one line on stderr, exit code 2; WEB_ROOT too")
    func missingWebRoot() async throws {
        let environment = ["SECRET_KEY": "s", "WS_REMOTE_URL": "ws://127.0.0.1:1"]
        let flag = try await Self.run(["serve", "--local-dev-mode", "--port", "0", "--web", "/nonexistent/web"], environment: environment)
        #expect(flag.status == 2)
        #expect(flag.stderr == "vnc-proxy: error: the web root /nonexistent/web is not a readable directory\n")
        let variable = try await Self.run(["serve", "--local-dev-mode", "--port", "0"],
                                          environment: environment.merging(["WEB_ROOT": "/nonexistent/env"]) { $1 })
        #expect(variable.status == 2)
        #expect(variable.stderr == "vnc-proxy: error: the web root /nonexistent/env is not a readable directory\n")
    }

    @Test("token mints what the proxy verifies")
    func token() async throws {
        let run = try await Self.run(["token", "--secret", "s3", "--namespace", "ns1", "--vm", "a", "--vm", "b", "--user-id", "u7"])
        #expect(run.status == 0)
        let claims = try TokenVerifier(secret: "s3").verify(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(claims.labInstance.allowedVMINames == ["a", "b"])
        #expect(claims.id == .string("u7"))
        #expect(claims.exp > Date().timeIntervalSince1970 + 3500)
    }

    @Test("token --private-key mints what serve --public-key admits; --alg checks the key type")
    func tokenWithPrivateKey() async throws {
        let pair = TestKeyPair.first(.es256)
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let privateKey = try directory.write(pair.privatePEM, to: "key.pem")
        let publicKey = try directory.write(pair.publicPEM, to: "pub.pem")
        let run = try await Self.run(["token", "--private-key", privateKey, "--kid", "k1", "--aud", "vnc", "--iss", "lab",
                                      "--namespace", ProxyHarness.namespace, "--vm", "vm1"])
        #expect(run.status == 0, "\(run.stderr)")
        let token = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let verifier = TokenVerifier(secret: nil, publicKeys: [try VerificationKey.load(file: publicKey, kid: "k1")],
                                     audience: "vnc", issuer: "lab")
        #expect(try verifier.verify(token).allows(vmName: "vm1"))

        try await ProxyHarness.with { harness in
            let serve = try await ServeProcessTests.ServeProcess(harness: harness, extraArguments: [
                "--public-key", "k1=\(publicKey)", "--audience", "vnc", "--issuer", "lab",
            ])
            let admitted = try await RawHTTP.exchange(port: serve.port, RawHTTP.upgradeRequest(path: "/\(token)/vm1"))
            #expect(admitted.status == 101, "\(admitted.raw)")
            #expect(await serve.terminate() == 0)
        }

        let mismatch = try await Self.run(["token", "--private-key", privateKey, "--alg", "RS256", "--namespace", "ns", "--vm", "a"])
        #expect(mismatch.status == 2)
        #expect(mismatch.stderr == "vnc-proxy: error: private key file \(privateKey): the key is for ES256, not RS256\n")
    }

    @Test("serve given a private key as --public-key: one line on stderr, exit code 2")
    func privateKeyAsPublicKey() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let privateKey = try directory.write(TestKeyPair.first(.edDSA).privatePEM, to: "key.pem")
        let run = try await Self.run(["serve", "--public-key", privateKey, "--local-dev-mode", "--port", "0"])
        #expect(run.status == 2)
        #expect(run.stderr.hasPrefix("vnc-proxy: error: public key file \(privateKey): a private key, not a public key"))
        #expect(run.stderr.split(separator: "\n").count == 1)
    }

    @Test("demo --self-test completes an RFB handshake through the proxy and the simulator")
    func demoSelfTest() async throws {
        let run = try await Self.run(["demo", "--port", "0", "--self-test"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("self-test: RFB handshake complete through the proxy: 640x480"))
        #expect(run.stdout.contains("curl -i -N"))
    }
}
