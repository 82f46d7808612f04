import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import WebSocketSupport

/// Why the upstream websocket could not be opened, and what the client is told about it.
enum UpstreamError: Error, Sendable {
    case rejected(status: HTTPResponseStatus, message: String)
    case connectFailed(String)
    case tlsFailed(String)
    case timedOut
    case credentialsUnavailable(String)
    case protocolViolation(String)

    init(_ error: Error) {
        switch error {
        case let error as UpstreamError:
            self = error
        case ClientHandshakeError.rejected(let status, let body):
            self = .rejected(status: status, message: Self.statusMessage(fromBody: body))
        case ClientHandshakeError.invalidUpgradeResponse(let detail):
            self = .protocolViolation(detail)
        case ClientHandshakeError.connectionClosed:
            self = .connectFailed("upstream closed the connection during the handshake")
        case is NIOSSLError, is BoringSSLError, is NIOSSLExtraError:
            self = .tlsFailed(String(describing: error))
        case ChannelError.connectTimeout:
            self = .timedOut
        default:
            self = .connectFailed(String(describing: error))
        }
    }

    /// The answer for the client, following DESIGN.md's mapping.
    var proxyError: ProxyError {
        switch self {
        case .rejected(let status, let message):
            switch status.code {
            case 401, 403:
                return ProxyError(.badGateway, "upstream_credentials_rejected",
                                  "the Kubernetes API refused the proxy's credentials")
            case 404:
                return ProxyError(.notFound, "vmi_not_found", message)
            case 400:
                return ProxyError(.conflict, "vmi_unavailable", message)
            default:
                return ProxyError(.badGateway, "upstream_error", "upstream answered \(status.code): \(message)")
            }
        case .connectFailed:
            return ProxyError(.badGateway, "upstream_unreachable", "cannot connect to the Kubernetes API")
        case .tlsFailed:
            return ProxyError(.badGateway, "upstream_tls_failed", "TLS with the Kubernetes API failed")
        case .timedOut:
            return ProxyError(.gatewayTimeout, "upstream_timeout", "the Kubernetes API did not answer in time")
        case .credentialsUnavailable:
            return ProxyError(.badGateway, "upstream_credentials_unavailable", "the proxy's service-account token is unreadable")
        case .protocolViolation:
            return ProxyError(.badGateway, "upstream_protocol_error", "the Kubernetes API sent an invalid websocket handshake")
        }
    }

    /// Kubernetes errors are `Status` objects; their `message` is what a person needs.
    /// Anything else is reduced to printable text of bounded length.
    static func statusMessage(fromBody body: String) -> String {
        struct Status: Decodable { var message: String? }
        if let status = try? JSONDecoder().decode(Status.self, from: Data(body.utf8)), let message = status.message {
            return String(message.prefix(512))
        }
        let printable = body.unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7f }
        return String(String.UnicodeScalarView(printable).prefix(512))
    }
}
