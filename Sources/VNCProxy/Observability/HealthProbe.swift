import NIOCore
import NIOHTTP1
import WebSocketSupport

/// `/healthz` (the process answers) and `/readyz` (it takes new sessions), for Kubernetes probes.
/// Both are single path segments, so they never shadow `[/PREFIX]/TOKEN/VMNAME`.
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

    func answer(readiness: Readiness) -> UpgradeDecision {
        let problem = self == .readiness ? readiness.problem() : nil
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "cache-control", value: "no-store")
        guard let problem else {
            return .respond(status: .ok, headers: headers, body: ByteBuffer(string: #"{"status":"ok"}"# + "\n"))
        }
        let body = #"{"status":"\#(problem.status)","reason":"\#(problem.reason)"}"# + "\n"
        return .respond(status: .serviceUnavailable, headers: headers, body: ByteBuffer(string: body))
    }
}
