import Foundation
import Testing
@testable import VNCProxy

/// A property-based fuzzer for the two parsers that see raw attacker input: the path router and the
/// token verifier. Inputs are mutations of valid ones (byte flips, insertions, deletions, splices of
/// JSON fragments) from a fixed seed, so a failure replays. The properties: never a crash, a route is
/// only ever returned with safe names, and a token only verifies when it is byte for byte one we signed.
@Suite("Fuzzing the router and the verifier")
struct FuzzTests {
    static let budget = Int(ProcessInfo.processInfo.environment["VNC_PROXY_FUZZ_CASES"] ?? "") ?? 30_000

    static let alphabet: [UInt8] = Array("ABCXYZabcxyz0189-_.%/?#=+ {}[]\":,\\\u{0}\u{7f}".utf8) + [0xc3, 0xa9, 0xff]

    static func mutate(_ input: [UInt8], using generator: inout SeededGenerator) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &generator)
            switch Int.random(in: 0..<5, using: &generator) {
            case 0 where !bytes.isEmpty: bytes[position] = alphabet.randomElement(using: &generator)!
            case 1: bytes.insert(alphabet.randomElement(using: &generator)!, at: position)
            case 2 where !bytes.isEmpty: bytes.remove(at: position)
            case 3: bytes.insert(contentsOf: Array(["/", "..", "%2F", ".", "//"].randomElement(using: &generator)!.utf8), at: position)
            default: bytes = Array(bytes.prefix(position)) + Array(bytes.suffix(from: min(bytes.count, position + 3)))
            }
        }
        return bytes
    }

    @Test("Router: random and mutated paths never crash, and every accepted route is safe")
    func router() async {
        var generator = SeededGenerator(seed: 1123)
        let seeds = ["/a.b.c/vm1", "/ws_proxy/a.b.c/vm1", "/eyJ.eyJ.sig/ubuntu-2"].map { Array($0.utf8) }
        var accepted = 0, refused = 0, unrouted = 0
        for iteration in 0..<Self.budget {
            // Seconds of CPU: yield now and then, or the parallel tests' timers starve on the cooperative pool.
            if iteration % 500 == 0 { await Task.yield() }
            let path = String(decoding: Self.mutate(seeds.randomElement(using: &generator)!, using: &generator), as: UTF8.self)
            for prefix in [[], ["ws_proxy"]] as [[Substring]] {
                do {
                    if let route = try ProxyRoute.parse(uri: path, prefix: prefix) {
                        accepted += 1
                        #expect(KubernetesName.isValidLabel(route.vmName), "\(path.debugDescription)")
                        let token = route.token ?? ""
                        #expect(!token.contains("/") && !token.contains("%"), "\(path.debugDescription)")
                    } else {
                        unrouted += 1
                    }
                } catch {
                    refused += 1
                }
                #expect(!RedactedPath(uri: path, prefix: prefix).description.contains("eyJ.eyJ.sig"))
            }
        }
        print("fuzz router: \(Self.budget * 2) paths, \(accepted) routed, \(refused) refused, \(unrouted) unrouted, 0 crashes")
        #expect(accepted > 0 && refused > 0 && unrouted > 0, "the generator reaches every outcome")
    }

    @Test("Verifier: mutated tokens never crash, and only untouched signed tokens verify")
    func verifier() async throws {
        var generator = SeededGenerator(seed: 4242)
        let secret = "fuzz-secret"
        let signer = TokenSigner(secret: secret)
        let verifier = TokenVerifier(secret: secret)
        let valid = try (0..<8).map { try signer.sign(namespace: "ns-\($0)", vmNames: ["vm\($0)"], lifetime: 600) }
        let validSet = Set(valid)
        var verified = 0, outcomes: [String: Int] = [:]
        for iteration in 0..<Self.budget {
            if iteration % 500 == 0 { await Task.yield() }
            let token = String(decoding: Self.mutate(Array(valid.randomElement(using: &generator)!.utf8), using: &generator), as: UTF8.self)
            do {
                _ = try verifier.verify(token)
                verified += 1
                // A mutation may only verify when base64 ignored it (trailing bits or a no-op edit).
                let decodedSame = validSet.contains(token) || Self.decodesLikeAValidToken(token, valid: valid)
                #expect(decodedSame, "a forged token verified: \(token)")
            } catch {
                outcomes[String("\(error)".prefix { $0 != "(" }), default: 0] += 1
            }
        }
        let summary = outcomes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        print("fuzz verifier: \(Self.budget) tokens, \(verified) verified, refused: \(summary), 0 crashes")
        #expect(outcomes.count >= 3, "the generator reaches several refusal reasons")
    }

    /// Whether `token` decodes to the same header, payload and signature bytes as one of `valid`.
    static func decodesLikeAValidToken(_ token: String, valid: [String]) -> Bool {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map { Base64URL.decode($0) }
        return valid.contains { original in
            let originalParts = original.split(separator: ".").map { Base64URL.decode($0) }
            return parts.count == 3 && parts == originalParts
        }
    }
}
