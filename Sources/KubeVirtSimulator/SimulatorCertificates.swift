import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// A throwaway certificate authority and the API server certificate it signs, like a cluster's own CA.
public struct SimulatorCertificates: Sendable {
    /// The CA certificate, PEM; this is what a pod finds in its service-account `ca.crt`.
    public let caPEM: String
    public let serverCertificatePEM: String
    let serverKeyPEM: String

    /// Generates a fresh P-256 CA and a server certificate for `dnsNames` and `ipAddresses`.
    public static func generate(
        dnsNames: [String] = ["localhost", "kubernetes.default.svc"],
        ipAddresses: [String] = ["127.0.0.1", "::1"],
        commonName: String = "kubevirt-simulator"
    ) throws -> SimulatorCertificates {
        let now = Date()
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("\(commonName) CA") }
        let ca = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(caKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(3600 * 24 * 365),
            issuer: caName,
            subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(caKey))

        let serverKey = P256.Signing.PrivateKey()
        let names = dnsNames.map { GeneralName.dnsName($0) } + ipAddresses.compactMap(Self.ipName)
        let server = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(serverKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(3600 * 24 * 30),
            issuer: caName,
            subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: .init(caKey))

        return SimulatorCertificates(
            caPEM: try ca.serializeAsPEM().pemString,
            serverCertificatePEM: try server.serializeAsPEM().pemString,
            serverKeyPEM: serverKey.pemRepresentation)
    }

    /// Loads a certificate chain and key from PEM files instead of generating them.
    public static func load(certificateFile: String, keyFile: String, caFile: String?) throws -> SimulatorCertificates {
        let certificate = try String(contentsOfFile: certificateFile, encoding: .utf8)
        return SimulatorCertificates(
            caPEM: try caFile.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? certificate,
            serverCertificatePEM: certificate,
            serverKeyPEM: try String(contentsOfFile: keyFile, encoding: .utf8))
    }

    /// Writes the CA to `path`, where the proxy's `caFilePath` can point.
    public func writeCA(to path: String) throws {
        try self.caPEM.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Writes the server certificate and its key, for a server of the caller's own (a test's TLS listener).
    public func writeServerIdentity(certificateTo certificatePath: String, keyTo keyPath: String) throws {
        try self.serverCertificatePEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        try self.serverKeyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)
    }

    func makeServerContext() throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(self.serverCertificatePEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(self.serverKeyPEM.utf8), format: .pem)
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        return try NIOSSLContext(configuration: configuration)
    }

    private static func ipName(_ text: String) -> GeneralName? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v4) { ArraySlice($0) }))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v6) { ArraySlice($0) }))
        }
        return nil
    }
}
