import NIOCore
import NIOHTTP1
import WebSocketSupport

/// `/healthz` (the process answers) and `/readyz` (it takes new sessions: false once draining), for
/// Kubernetes probes. Both are single path segments, so they never shadow `[/PREFIX]/TOKEN/VMNAME`.
enum HealthProbe {
    case liveness
    case readiness

    init?(uri: String) {
        switch uri.prefix(while: { $0 != "?" }) {
        case "/healthz": self = .liveness
        case "/readyz": self = .readiness
        default: return nil
        }
    }

    func answer(draining: Bool) -> UpgradeDecision {
        let ready = self == .liveness || !draining
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "cache-control", value: "no-store")
        let body = ready ? #"{"status":"ok"}"# : #"{"status":"draining"}"#
        return .respond(status: ready ? .ok : .serviceUnavailable, headers: headers, body: ByteBuffer(string: body + "\n"))
    }
}
