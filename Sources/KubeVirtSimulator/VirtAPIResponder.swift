import Foundation
import NIOCore
import NIOHTTP1
import WebSocketSupport

/// Answers requests the way kube-apiserver and virt-api do for the VNC subresource.
struct VirtAPIResponder: UpgradeResponder {
    static let subprotocol = "plain.kubevirt.io"

    let configuration: SimulatorConfiguration
    let state: SimulatorState

    func decide(_ request: IncomingRequest, channel: Channel) -> EventLoopFuture<UpgradeDecision> {
        let authorization = request.head.headers["authorization"].first
        self.state.record(RecordedRequest(
            uri: request.head.uri, authorization: authorization, subprotocols: request.offeredSubprotocols))
        return channel.eventLoop.makeSucceededFuture(self.answer(request, authorization: authorization))
    }

    private func answer(_ request: IncomingRequest, authorization: String?) -> UpgradeDecision {
        // kube-apiserver authenticates first: a bad token never learns whether a VMI exists.
        if let tokenFile = self.configuration.tokenFilePath {
            let expected = (try? String(contentsOfFile: tokenFile, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard let expected, !expected.isEmpty, authorization == "Bearer \(expected)" else {
                return StatusResponse.unauthorized.decision
            }
        }
        guard let (namespace, name) = Self.parse(uri: request.head.uri) else {
            return StatusResponse.pathNotFound.decision
        }
        if let granted = self.configuration.grantedNamespaces, !granted.contains(namespace) {
            return StatusResponse.forbidden(vmi: name, namespace: namespace, user: self.configuration.serviceAccount).decision
        }
        guard let vmi = self.configuration.vmis.first(where: { $0.namespace == namespace && $0.name == name }) else {
            return StatusResponse.notFound(vmi: name).decision
        }
        switch vmi.phase {
        case .notRunning: return StatusResponse.notRunning.decision
        case .noGraphics: return StatusResponse.noGraphics.decision
        case .running: break
        }
        guard request.isWebSocketUpgrade else {
            return StatusResponse(code: .badRequest, reason: "BadRequest", message: "websocket: the client is not using the websocket protocol").decision
        }
        var headers = HTTPHeaders()
        if request.offeredSubprotocols.contains(Self.subprotocol) {
            headers.add(name: "sec-websocket-protocol", value: Self.subprotocol)
        }
        let state = self.state
        let chunkSize = self.configuration.chunkSize
        return .upgrade(headers: headers) { channel in
            state.sessionStarted(namespace: namespace, name: name, channel: channel)
            try channel.pipeline.syncOperations.addHandler(ConsoleHandler(backend: vmi.backend, chunkSize: chunkSize) { key, down in
                state.keyEvent(namespace: namespace, name: name, key: key, down: down)
            })
        }
    }

    /// `/apis/subresources.kubevirt.io/{v1|v1alpha3}/namespaces/NS/virtualmachineinstances/NAME/vnc[?query]`
    static func parse(uri: String) -> (namespace: String, name: String)? {
        let path = uri.prefix { $0 != "?" }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 9, parts[0].isEmpty, parts[1] == "apis", parts[2] == "subresources.kubevirt.io",
              ["v1", "v1alpha3"].contains(parts[3]), parts[4] == "namespaces", parts[6] == "virtualmachineinstances",
              parts[8] == "vnc", !parts[5].isEmpty, !parts[7].isEmpty else {
            return nil
        }
        return (String(parts[5]), String(parts[7]))
    }

    func protocolError(status: HTTPResponseStatus, reason: String, allocator: ByteBufferAllocator) -> UpgradeDecision {
        StatusResponse(code: status, reason: "BadRequest", message: reason).decision
    }
}
