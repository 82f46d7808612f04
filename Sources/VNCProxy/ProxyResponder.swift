import Logging
import NIOCore
import NIOHTTP1
import WebSocketSupport

/// Decides each request: route, token, VM, then the upstream; answers with 101 or a JSON error.
struct ProxyResponder: UpgradeResponder {
    /// Subprotocols we may echo to a viewer: noVNC before 1.2 offers `binary`; some clients mirror KubeVirt's.
    static let clientSubprotocols: Set<String> = ["binary", UpstreamDialer.kubevirtSubprotocol]

    let prefix: [Substring]
    let verifier: TokenVerifier
    let dialer: UpstreamDialer
    let registry: ConnectionRegistry
    let closeTimeout: TimeAmount
    let logger: Logger

    func decide(_ request: IncomingRequest, channel: Channel) -> EventLoopFuture<UpgradeDecision> {
        let eventLoop = channel.eventLoop
        if let probe = HealthProbe(uri: request.head.uri) {
            return eventLoop.makeSucceededFuture(probe.answer(draining: self.registry.isDraining))
        }
        let route: ProxyRoute
        let claims: TokenClaims
        do {
            guard !self.registry.isDraining else {
                throw ProxyError(.serviceUnavailable, "draining", "the proxy is shutting down; reconnect")
            }
            guard let parsed = try ProxyRoute.parse(uri: request.head.uri, prefix: self.prefix) else {
                throw ProxyError.notFound
            }
            route = parsed
            guard request.isWebSocketUpgrade else {
                throw ProxyError(.badRequest, "websocket_upgrade_required", "this route only accepts websocket upgrades")
            }
            do {
                claims = try self.verifier.verify(route.token)
            } catch {
                throw error.proxyError
            }
            guard claims.allows(vmName: route.vmName) else { throw TokenError.vmNotAllowed.proxyError }
        } catch {
            return eventLoop.makeSucceededFuture(self.reject(error, request: request, route: nil))
        }

        let session = ProxySession(
            namespace: claims.labInstance.namespaceName,
            vmName: String(route.vmName),
            subject: claims.id.description,
            clientAddress: request.remoteAddress?.ipAddress ?? "unknown",
            logger: self.logger)
        let boundSession = NIOLoopBound(session, eventLoop: eventLoop)
        let closeTimeout = self.closeTimeout
        let upstream = self.dialer.dial(namespace: session.namespace, vmName: session.vmName, on: eventLoop) { upstreamChannel in
            try upstreamChannel.pipeline.syncOperations.addHandler(
                RelayHandler(peer: .upstream, session: boundSession.value, closeTimeout: closeTimeout))
        }
        let target: Logger.Metadata = ["namespace": "\(session.namespace)", "vm": "\(session.vmName)"]
        let chosen = request.offeredSubprotocols.first { Self.clientSubprotocols.contains($0) }
        return upstream.map { upstreamChannel in
            self.upgrade(client: channel, upstream: upstreamChannel, session: boundSession, subprotocol: chosen)
        }.recover { error in
            let upstreamError = UpstreamError(error)
            if case .rejected(let status, _) = upstreamError, [401, 403].contains(status.code) {
                self.logger.error("the Kubernetes API refused the proxy's service-account credentials; check the token file and RBAC",
                                  metadata: target.merging(["upstream_status": "\(status.code)"], uniquingKeysWith: { $1 }))
            }
            return self.reject(upstreamError.proxyError, request: request, route: route,
                               detail: "\(upstreamError)")
        }
    }

    private func upgrade(
        client: Channel,
        upstream: Channel,
        session: NIOLoopBound<ProxySession>,
        subprotocol: String?
    ) -> UpgradeDecision {
        // Until the halves are linked, the relay cannot propagate a close: tie the channels together here.
        let linked = NIOLoopBoundBox(false, eventLoop: client.eventLoop)
        client.closeFuture.whenComplete { _ in
            if !linked.value { upstream.close(promise: nil) }
        }
        client.closeFuture.and(upstream.closeFuture).whenComplete { _ in
            session.value.logEnd()
        }
        var headers = HTTPHeaders()
        if let subprotocol { headers.add(name: "sec-websocket-protocol", value: subprotocol) }
        let registry = self.registry
        let closeTimeout = self.closeTimeout
        return .upgrade(headers: headers) { client in
            let clientHalf = RelayHandler(peer: .client, session: session.value, closeTimeout: closeTimeout)
            try client.pipeline.syncOperations.addHandler(clientHalf)
            let upstreamHalf = try upstream.pipeline.syncOperations.handler(type: RelayHandler.self)
            RelayHandler.link(clientHalf, upstreamHalf)
            linked.value = true
            session.value.logStart(subprotocol: subprotocol)
            let boundHalves = NIOLoopBound((clientHalf, upstreamHalf), eventLoop: client.eventLoop)
            registry.markSession(client) {
                client.eventLoop.execute {
                    let (clientHalf, upstreamHalf) = boundHalves.value
                    clientHalf.session.noteEnd("proxy shutting down")
                    clientHalf.sendClose(code: .goingAway, reason: "proxy shutting down")
                    upstreamHalf.sendClose(code: .goingAway, reason: "proxy shutting down")
                }
            }
        }
    }

    private func reject(_ error: Error, request: IncomingRequest, route: ProxyRoute?, detail: String? = nil) -> UpgradeDecision {
        let proxyError = (error as? ProxyError) ?? ProxyError(.internalServerError, "internal_error", "internal error")
        var metadata: Logger.Metadata = [
            "status": "\(proxyError.status.code)",
            "outcome": "\(proxyError.code)",
            "client": "\(request.remoteAddress?.ipAddress ?? "unknown")",
            "path": "\(RedactedPath(uri: request.head.uri, prefix: self.prefix))",
        ]
        if let detail { metadata["detail"] = "\(detail)" }
        self.logger.notice("request refused", metadata: metadata)
        return self.respond(proxyError, allocator: ByteBufferAllocator())
    }

    func respond(_ error: ProxyError, allocator: ByteBufferAllocator) -> UpgradeDecision {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "cache-control", value: "no-store")
        return .respond(status: error.status, headers: headers, body: error.body(allocator: allocator))
    }

    func protocolError(status: HTTPResponseStatus, reason: String, allocator: ByteBufferAllocator) -> UpgradeDecision {
        self.logger.notice("request refused", metadata: ["status": "\(status.code)", "outcome": "bad_request", "detail": "\(reason)"])
        let code = status == .requestTimeout ? "request_timeout" : "bad_request"
        return self.respond(ProxyError(status, code, reason), allocator: allocator)
    }
}
