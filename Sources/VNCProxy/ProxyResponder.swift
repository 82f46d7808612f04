import Logging
import NIOCore
import NIOHTTP1
import WebSocketSupport

/// Decides each request: probes, web files, client rate, route, token, VM, origin, caps, then the
/// upstream; answers with 101, a file, or a JSON error.
struct ProxyResponder: UpgradeResponder {
    /// Subprotocols we may echo to a viewer: noVNC before 1.2 offers `binary`; some clients mirror KubeVirt's.
    static let clientSubprotocols: Set<String> = ["binary", UpstreamDialer.kubevirtSubprotocol]

    let prefix: [Substring]
    let verifier: TokenVerifier
    let dialer: UpstreamDialer
    let registry: ConnectionRegistry
    let limiter: SessionLimiter
    let rateLimiter: RequestRateLimiter?
    let originPolicy: OriginPolicy
    let clientAddresses: ClientAddressResolver
    /// Whether `X-Auth-Request-Token` is taken from trusted proxies (an auth ingress in front of us).
    let trustAuthHeader: Bool
    let closeTimeout: TimeAmount
    let sessionPolicy: SessionSupervisor.Policy
    let enforceTokenExpiry: Bool
    let metrics: ProxyMetrics
    /// nil when metrics are served on the admin port, or by an app's own backend.
    let metricsEndpoint: MetricsEndpoint?
    let readiness: Readiness
    /// Static files and the console page, when a web root is configured.
    let web: WebResponder?
    let logger: Logger

    /// What is known about a request once it has passed every check but the upstream.
    private struct Admitted {
        var route: ProxyRoute
        var claims: TokenClaims
        var ticket: SessionLimiter.Ticket
    }

    func decide(_ request: IncomingRequest, channel: Channel) -> EventLoopFuture<UpgradeDecision> {
        let eventLoop = channel.eventLoop
        if let probe = HealthProbe(uri: request.head.uri) {
            return eventLoop.makeSucceededFuture(probe.answer(readiness: self.readiness))
        }
        if let metricsEndpoint, MetricsEndpoint.matches(uri: request.head.uri) {
            return eventLoop.makeSucceededFuture(metricsEndpoint.answer(allocator: channel.allocator))
        }
        // A websocket upgrade always goes to the proxy route; a plain request gets the file it names.
        if let web = self.web, !request.isWebSocketUpgrade {
            return web.answer(request, on: eventLoop).flatMap { answer in
                if let answer { return eventLoop.makeSucceededFuture(answer) }
                return self.decideWithoutFile(request, channel: channel)
            }
        }
        return self.decideProxyRoute(request, channel: channel)
    }

    /// A plain request that names no file: the proxy route's if it is one (a 400 asking for the upgrade),
    /// else an unknown route.
    private func decideWithoutFile(_ request: IncomingRequest, channel: Channel) -> EventLoopFuture<UpgradeDecision> {
        guard (try? ProxyRoute.parse(uri: request.head.uri, prefix: self.prefix)) != nil else {
            let client = self.clientAddresses.resolve(peer: request.remoteAddress, headers: request.head.headers)
            return channel.eventLoop.makeSucceededFuture(self.reject(ProxyError.notFound, request: request, client: client))
        }
        return self.decideProxyRoute(request, channel: channel)
    }

    private func decideProxyRoute(_ request: IncomingRequest, channel: Channel) -> EventLoopFuture<UpgradeDecision> {
        let eventLoop = channel.eventLoop
        let client = self.clientAddresses.resolve(peer: request.remoteAddress, headers: request.head.headers)
        let admitted: Admitted
        do {
            admitted = try self.admit(request, client: client)
        } catch {
            return eventLoop.makeSucceededFuture(self.reject(error, request: request, client: client))
        }

        let session = ProxySession(
            namespace: admitted.claims.labInstance.namespaceName,
            vmName: String(admitted.route.vmName),
            subject: admitted.claims.id.description,
            clientAddress: client,
            metrics: self.metrics,
            logger: self.logger)
        let boundSession = NIOLoopBound(session, eventLoop: eventLoop)
        let chosen = TokenSource.realSubprotocols(request.offeredSubprotocols).first { Self.clientSubprotocols.contains($0) }
        var policy = self.sessionPolicy
        if self.enforceTokenExpiry { policy.tokenExpiry = admitted.claims.exp }
        let policyForSession = policy
        return self.dialUpstream(session: boundSession, retryOnUnauthorized: true).map { upstreamChannel in
            self.upgrade(client: channel, upstream: upstreamChannel, session: boundSession, subprotocol: chosen,
                         ticket: admitted.ticket, policy: policyForSession)
        }.recover { error in
            admitted.ticket.releaseOnce()
            let upstreamError = UpstreamError(error)
            if case .rejected(let status, _) = upstreamError, [401, 403].contains(status.code) {
                self.logger.error(
                    "the Kubernetes API refused the proxy's service-account credentials; check the token file and RBAC",
                    metadata: ["upstream_status": "\(status.code)", "namespace": "\(boundSession.value.namespace)",
                               "vm": "\(boundSession.value.vmName)"])
            }
            return self.reject(upstreamError.proxyError, request: request, client: client, detail: "\(upstreamError)")
        }
    }

    /// Every check that needs no network, cheapest first; throws the `ProxyError` to answer with.
    private func admit(_ request: IncomingRequest, client: String) throws -> Admitted {
        guard !self.registry.isDraining else {
            throw ProxyError(.serviceUnavailable, "draining", "the proxy is shutting down; reconnect")
        }
        if let rateLimiter = self.rateLimiter, !rateLimiter.allow(client: client) {
            throw ProxyError(.tooManyRequests, "rate_limited", "too many requests from this address; slow down")
        }
        guard let route = try ProxyRoute.parse(uri: request.head.uri, prefix: self.prefix) else {
            throw ProxyError.notFound
        }
        guard request.isWebSocketUpgrade else {
            throw ProxyError(.badRequest, "websocket_upgrade_required", "this route only accepts websocket upgrades")
        }
        let origins = request.head.headers["origin"]
        guard origins.count <= 1, self.originPolicy.allows(origin: origins.first) else {
            throw ProxyError(.forbidden, "origin_not_allowed", "this page's origin may not open consoles")
        }
        let headerToken = self.trustAuthHeader && self.clientAddresses.isTrusted(peer: request.remoteAddress)
            ? request.head.headers[TokenSource.authHeader].first : nil
        let token = try TokenSource.select(
            path: route.token, subprotocol: try TokenSource.fromSubprotocols(request.offeredSubprotocols), header: headerToken)
        let claims: TokenClaims
        do {
            claims = try self.verifier.verify(token)
        } catch {
            throw error.proxyError
        }
        guard claims.allows(vmName: route.vmName) else { throw TokenError.vmNotAllowed.proxyError }
        let vmKey = claims.labInstance.namespaceName + "/" + route.vmName
        let ticket = try self.limiter.acquire(subject: claims.id.description, vm: vmKey).get()
        return Admitted(route: route, claims: claims, ticket: ticket)
    }

    /// A 401 from the API server may mean the kubelet rotated our token between read and use:
    /// the token file is read again (every dial does) and the dial tried once more.
    private func dialUpstream(session: NIOLoopBound<ProxySession>, retryOnUnauthorized: Bool) -> EventLoopFuture<Channel> {
        let closeTimeout = self.closeTimeout
        let metrics = self.metrics
        let started = NIODeadline.now()
        let dial = self.dialer.dial(namespace: session.value.namespace, vmName: session.value.vmName, on: session.eventLoop) { upstream in
            try upstream.pipeline.syncOperations.addHandler(
                RelayHandler(peer: .upstream, session: session.value, closeTimeout: closeTimeout))
        }.map { channel in
            metrics.upstreamHandshakes.recordNanoseconds((NIODeadline.now() - started).nanoseconds)
            return channel
        }
        guard retryOnUnauthorized else { return dial }
        return dial.flatMapError { error in
            guard case .rejected(let status, _) = UpstreamError(error), status == .unauthorized else {
                return session.eventLoop.makeFailedFuture(error)
            }
            self.logger.notice("upstream answered 401; retrying once with the token file read again")
            return self.dialUpstream(session: session, retryOnUnauthorized: false)
        }
    }

    private func upgrade(
        client: Channel,
        upstream: Channel,
        session: NIOLoopBound<ProxySession>,
        subprotocol: String?,
        ticket: SessionLimiter.Ticket,
        policy: SessionSupervisor.Policy
    ) -> UpgradeDecision {
        // Until the halves are linked, the relay cannot propagate a close: tie the channels together here.
        let linked = NIOLoopBoundBox(false, eventLoop: client.eventLoop)
        client.closeFuture.whenComplete { _ in
            if !linked.value { upstream.close(promise: nil) }
        }
        client.closeFuture.and(upstream.closeFuture).whenComplete { _ in
            ticket.releaseOnce()
            session.value.ended()
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
            session.value.started(subprotocol: subprotocol)

            let supervisor = SessionSupervisor(client: clientHalf, upstream: upstreamHalf, eventLoop: client.eventLoop)
            supervisor.start(policy)
            let boundSupervisor = NIOLoopBound(supervisor, eventLoop: client.eventLoop)
            client.closeFuture.whenComplete { _ in boundSupervisor.value.stop() }

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

    private func reject(_ error: Error, request: IncomingRequest, client: String, detail: String? = nil) -> UpgradeDecision {
        let proxyError = (error as? ProxyError) ?? ProxyError(.internalServerError, "internal_error", "internal error")
        var metadata: Logger.Metadata = [
            "status": "\(proxyError.status.code)",
            "outcome": "\(proxyError.code)",
            "client": "\(client)",
            "path": "\(RedactedPath(uri: request.head.uri, prefix: self.prefix))",
        ]
        if let detail { metadata["detail"] = "\(detail)" }
        self.logger.notice("request refused", metadata: metadata)
        self.metrics.countRequest(outcome: proxyError.code)
        return proxyError.answer()
    }

    func protocolError(status: HTTPResponseStatus, reason: String, allocator: ByteBufferAllocator) -> UpgradeDecision {
        self.logger.notice("request refused", metadata: ["status": "\(status.code)", "outcome": "bad_request", "detail": "\(reason)"])
        let code = status == .requestTimeout ? "request_timeout" : "bad_request"
        self.metrics.countRequest(outcome: code)
        return ProxyError(status, code, reason).answer()
    }
}
