import NIOHTTP1

/// Where a request's token comes from, most preferred first (DESIGN.md "Ways in for the token"):
/// the Kubernetes bearer subprotocol, a trusted auth ingress's header, or the path.
enum TokenSource {
    /// `base64url.bearer.authorization.k8s.io.<base64url token>`, offered next to a real subprotocol.
    static let subprotocolPrefix = "base64url.bearer.authorization.k8s.io."
    static let authHeader = "x-auth-request-token"

    /// The token from the offered subprotocols, if one carries it.
    static func fromSubprotocols(_ offered: [String]) throws(ProxyError) -> String? {
        let carriers = offered.filter { $0.hasPrefix(Self.subprotocolPrefix) }
        guard let carrier = carriers.first else { return nil }
        guard carriers.count == 1, let data = Base64URL.decode(carrier.dropFirst(Self.subprotocolPrefix.count)),
              let token = String(data: data, encoding: .utf8) else {
            throw ProxyError(.unauthorized, "token_malformed", "the bearer subprotocol does not hold a token")
        }
        return token
    }

    /// Subprotocols the client may be answered with: never the one that carries the token.
    static func realSubprotocols(_ offered: [String]) -> [String] {
        offered.filter { !$0.hasPrefix(Self.subprotocolPrefix) }
    }

    /// Picks the one token of a request, refusing a request that brings two.
    static func select(path: Substring?, subprotocol: String?, header: String?) throws(ProxyError) -> String {
        let found = [path.map(String.init), subprotocol, header].compactMap { $0 }
        guard found.count <= 1 else {
            throw ProxyError(.badRequest, "token_ambiguous", "send the token one way only: path, subprotocol or header")
        }
        guard let token = found.first else {
            throw ProxyError(.unauthorized, "token_missing", "no token: put it in the bearer subprotocol or the path")
        }
        try ProxyRoute.checkToken(token)
        return token
    }
}
