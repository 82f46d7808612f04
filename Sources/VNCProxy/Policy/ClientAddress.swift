import NIOCore
import NIOHTTP1

/// Who the client is: the peer address, or what a trusted reverse proxy says in `X-Forwarded-For`.
struct ClientAddressResolver: Sendable {
    private let trustedProxies: Set<String>

    init(trustedProxies: [String]) {
        self.trustedProxies = Set(trustedProxies)
    }

    func isTrusted(peer: SocketAddress?) -> Bool {
        peer?.ipAddress.map(self.trustedProxies.contains) ?? false
    }

    /// The rightmost address in the chain that is not one of our trusted proxies.
    func resolve(peer: SocketAddress?, headers: HTTPHeaders) -> String {
        let peerIP = peer?.ipAddress ?? "unknown"
        guard self.trustedProxies.contains(peerIP) else { return peerIP }
        let chain = headers["x-forwarded-for"].flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        for address in chain.reversed() where !self.trustedProxies.contains(address) {
            // Only a syntactically valid IP is believed; anything else stays the proxy's address.
            return (try? SocketAddress(ipAddress: address, port: 0)) != nil ? address : peerIP
        }
        return peerIP
    }
}
