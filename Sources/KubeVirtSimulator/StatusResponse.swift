import Foundation
import NIOCore
import NIOHTTP1
import WebSocketSupport

/// A Kubernetes `Status` failure, the body of every API server error.
struct StatusResponse {
    var code: HTTPResponseStatus
    var reason: String
    var message: String

    var decision: UpgradeDecision {
        let object: [String: Any] = [
            "kind": "Status", "apiVersion": "v1", "metadata": [String: Any](), "status": "Failure",
            "message": self.message, "reason": self.reason, "code": Int(self.code.code),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        return .respond(status: self.code, headers: headers, body: ByteBuffer(bytes: data))
    }

    static let unauthorized = StatusResponse(code: .unauthorized, reason: "Unauthorized", message: "Unauthorized")

    static func forbidden(vmi: String, namespace: String, user: String) -> StatusResponse {
        StatusResponse(code: .forbidden, reason: "Forbidden", message:
            "virtualmachineinstances.subresources.kubevirt.io \"\(vmi)\" is forbidden: User \"\(user)\" cannot get resource "
            + "\"virtualmachineinstances/vnc\" in API group \"subresources.kubevirt.io\" in the namespace \"\(namespace)\"")
    }

    static func notFound(vmi: String) -> StatusResponse {
        StatusResponse(code: .notFound, reason: "NotFound", message: "virtualmachineinstance.kubevirt.io \"\(vmi)\" not found")
    }

    static let notRunning = StatusResponse(code: .badRequest, reason: "BadRequest", message: "VMI is not running")
    static let noGraphics = StatusResponse(code: .badRequest, reason: "BadRequest", message: "No graphics devices are present.")
    static let pathNotFound = StatusResponse(code: .notFound, reason: "NotFound", message: "the server could not find the requested resource")
}
