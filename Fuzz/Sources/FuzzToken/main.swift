// libFuzzer entry point: tokens. The first byte picks the shape: a raw token string, or a payload
// that is signed with the right secret so the fuzzer reaches the claims decoder and its checks.
// Properties checked beyond "does not crash": anything accepted has a valid namespace and a
// bounded list of VMs, and a token that verifies does not verify under another secret.
import Crypto
import Foundation
@testable import VNCProxy

private let secret = "fuzz-secret"
private let verifier = TokenVerifier(secret: secret)
private let otherVerifier = TokenVerifier(secret: "another-secret")
private let header = Base64URL.encode(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzToken(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: start, count: count)
    guard let selector = bytes.first else { return 0 }
    let body = Data(bytes.dropFirst())
    let token: String
    if selector % 2 == 0 {
        token = String(decoding: body, as: UTF8.self)
    } else {
        let signingInput = header + "." + Base64URL.encode(body)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(signingInput.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        token = signingInput + "." + Base64URL.encode(Data(mac))
    }
    let now = Date(timeIntervalSince1970: 1_900_000_000)
    if let claims = try? verifier.verify(token, now: now) {
        precondition(KubernetesName.isValidLabel(claims.labInstance.namespaceName), "accepted an invalid namespace")
        precondition(claims.labInstance.allowedVMINames.count <= TokenVerifier.maxAllowedNames, "accepted too many VMs")
        precondition((try? otherVerifier.verify(token, now: now)) == nil, "verified under another secret")
    }
    return 0
}
