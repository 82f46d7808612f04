import Foundation
import KubeVirtSimulator
import NIOCore
import NIOSSL
import Testing
import VNCProxy
import WebSocketSupport

/// `--tls-cert/--tls-key`: wss:// straight to the proxy, the handshake deadline, and reloading.
@Suite("TLS on the listener")
struct ListenerTLSTests {
    /// A certificate pair for the proxy, written where the configuration can point.
    struct Identity {
        let certificates: SimulatorCertificates
        let certificatePath: String
        let keyPath: String

        init(directory: URL, name: String) throws {
            self.certificates = try SimulatorCertificates.generate(commonName: name)
            self.certificatePath = directory.appendingPathComponent("\(name).crt").path
            self.keyPath = directory.appendingPathComponent("\(name).key").path
            try self.certificates.writeServerIdentity(certificateTo: self.certificatePath, keyTo: self.keyPath)
        }

        /// Installs this pair as the files the proxy watches.
        func install(certificateTo certificatePath: String, keyTo keyPath: String) throws {
            try self.certificates.writeServerIdentity(certificateTo: certificatePath, keyTo: keyPath)
        }

        func clientContext() throws -> NIOSSLContext {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(self.certificates.caPEM.utf8)))
            return try NIOSSLContext(configuration: configuration)
        }
    }

    static func scratchDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vnc-proxy-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// A harness whose proxy listens with TLS, with a certificate of its own.
    static func withTLSProxy(
        adjust: @escaping @Sendable (inout WebsocketProxy.Configuration) -> Void = { _ in },
        _ body: (ProxyHarness, Identity) async throws -> Void
    ) async throws {
        let directory = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let identity = try Identity(directory: directory, name: "vnc-proxy")
        try await ProxyHarness.with(adjust: {
            $0.tlsCertificatePath = identity.certificatePath
            $0.tlsKeyPath = identity.keyPath
            adjust(&$0)
        }) { harness in try await body(harness, identity) }
    }

    @Test("A viewer speaks wss:// to the proxy and reaches the VM's RFB server")
    func wssSession() async throws {
        try await Self.withTLSProxy { harness, identity in
            let result = try await WebSocketClient.withConnection(
                host: "127.0.0.1", port: harness.port, path: "/\(try harness.token())/vm1",
                tls: try identity.clientContext(), serverHostname: "localhost"
            ) { try await RFBProbe.run(on: $0) }
            #expect(result.name == "kubevirt-simulator")
            let plain = try await RawHTTP.exchange(port: harness.port, RawHTTP.upgradeRequest(path: "/\(try harness.token())/vm1"),
                                                   timeout: .seconds(5))
            #expect(!plain.raw.hasPrefix("HTTP/1.1 101"), "plain HTTP to the TLS port opens nothing")
        }
    }

    @Test("A client that never finishes the TLS handshake is cut after the handshake deadline")
    func handshakeDeadline() async throws {
        try await Self.withTLSProxy(adjust: { $0.requestTimeout = .seconds(1) }) { harness, _ in
            // Nothing at all, then half a ClientHello: both are closed by the proxy, not by our 20 s guard.
            for bytes in [[], [0x16, 0x03, 0x01, 0x02, 0x00, 0x01]] as [[UInt8]] {
                let started = Date()
                let answer = try await RawHTTP.exchange(port: harness.port, bytes: bytes, timeout: .seconds(20))
                let waited = Date().timeIntervalSince(started)
                print("TLS handshake deadline: \(bytes.count)-byte start closed after \(String(format: "%.2f", waited)) s (deadline 1 s, then 1 s for the unsendable 408)")
                #expect(waited < 15, "closed by the proxy's deadline")
                #expect(!answer.raw.hasPrefix("HTTP/1.1"), "nothing in the clear")
            }
            #expect(await harness.eventually { harness.proxy.openConnectionCount == 0 })
        }
    }

    @Test("A renewed certificate is picked up without a restart; a broken one keeps the last good pair")
    func reload() async throws {
        let directory = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try Identity(directory: directory, name: "first")
        let renewed = try Identity(directory: directory, name: "renewed")
        let certificatePath = directory.appendingPathComponent("tls.crt").path
        let keyPath = directory.appendingPathComponent("tls.key").path
        try first.install(certificateTo: certificatePath, keyTo: keyPath)
        try await ProxyHarness.with(adjust: {
            $0.tlsCertificatePath = certificatePath
            $0.tlsKeyPath = keyPath
            $0.tlsReloadInterval = .milliseconds(100)
        }) { harness in
            @Sendable func opens(trusting identity: Identity) async -> Bool {
                guard let context = try? identity.clientContext(), let token = try? harness.token() else { return false }
                let result = try? await WebSocketClient.withConnection(
                    host: "127.0.0.1", port: harness.port, path: "/\(token)/echo", tls: context, serverHostname: "localhost"
                ) { session in
                    try await session.send([9])
                    return try await session.read(count: 1)
                }
                return result == [9]
            }
            #expect(await opens(trusting: first))
            #expect(!(await opens(trusting: renewed)))

            try renewed.install(certificateTo: certificatePath, keyTo: keyPath)
            #expect(await harness.eventually { await opens(trusting: renewed) }, "the renewed certificate is served")
            #expect(!(await opens(trusting: first)))
            #expect(harness.logs.all.contains { $0.contains("listener TLS certificate reloaded") })

            try "not a certificate".write(toFile: certificatePath, atomically: true, encoding: .utf8)
            #expect(await harness.eventually { harness.logs.all.contains { $0.contains("does not load; keeping the previous one") } })
            #expect(await opens(trusting: renewed), "the last good pair is still served")
        }
    }

    @Test("Only a certificate or only a key is a configuration error")
    func halfConfigured() throws {
        #expect(throws: ConfigurationError.self) {
            _ = try WebsocketProxy(configuration: .init(secretKey: "s", tlsCertificatePath: "/tmp/x.crt"))
        }
    }
}
