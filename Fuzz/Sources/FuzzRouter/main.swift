// libFuzzer entry point: the request target of an upgrade, as a client may send it.
// Properties checked beyond "does not crash": a parsed route names a valid VM and a well-formed
// token, and the path as logged never contains the token.
@testable import VNCProxy

private let prefixes: [[Substring]] = [[], ["ws_proxy"], ["a", "b"]]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRouter(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: start, count: count)
    guard let selector = bytes.first else { return 0 }
    let uri = String(decoding: bytes.dropFirst(), as: UTF8.self)
    let prefix = prefixes[Int(selector) % prefixes.count]

    let route: ProxyRoute?
    do {
        route = try ProxyRoute.parse(uri: uri, prefix: prefix)
    } catch {
        route = nil
    }
    if let route {
        precondition(KubernetesName.isValidLabel(route.vmName), "route with an invalid VM name")
        if let token = route.token {
            precondition((try? ProxyRoute.checkToken(token)) != nil, "route with a malformed token")
            // The token's own segment is the one that must be hidden; the same text may appear as a
            // VM name or inside one, and that is fine (two inputs the fuzzer found).
            let logged = RedactedPath(uri: uri, prefix: prefix).description.split(separator: "/", omittingEmptySubsequences: false)
            precondition(logged.count <= prefix.count + 1 || logged[prefix.count + 1] == "<redacted>", "token in the logged path")
        }
    }
    _ = try? TokenSource.fromSubprotocols([uri, "binary"])
    return 0
}
