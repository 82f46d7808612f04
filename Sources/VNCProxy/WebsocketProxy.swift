import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import WebSocketSupport

/// A websocket proxy that puts LabOrchestrator token checks in front of KubeVirt's VNC console.
///
/// Viewers connect to `[/PREFIX]/TOKEN/VMNAME`; the proxy verifies the token, dials
/// `.../virtualmachineinstances/VMNAME/vnc` on the Kubernetes API with its own service-account
/// credentials, and relays the RFB stream.
///
///     let proxy = try WebsocketProxy(configuration: .init(secretKey: "secret", port: 0))
///     let address = try proxy.runInThread()   // listening now
///     ...
///     proxy.stop()                            // sessions closed, port released
///
/// `run()` blocks the calling thread until `stop()` is called from another one; `run() async`
/// does the same for structured concurrency and stops when its task is cancelled.
/// `stop()` must not be called from one of the proxy's own event loop threads.
public final class WebsocketProxy: Sendable {
    public let configuration: Configuration
    private let logger: Logger
    private let endpoint: UpstreamEndpoint
    private let upstreamPath: UpstreamPath
    private let registry = ConnectionRegistry()
    private let metrics: ProxyMetrics
    private let state = NIOLockedValueBox(LifecycleState.idle)
    private let stopped = ConditionLock(value: 0)

    /// The threads a running proxy owns: its event loops, and the pool that reads web files.
    private struct Threads: Sendable {
        var group: MultiThreadedEventLoopGroup
        var fileIO: NIOThreadPool?

        func shutdown() {
            try? self.group.syncShutdownGracefully()
            try? self.fileIO?.syncShutdownGracefully()
        }
    }

    private struct Listeners {
        var threads: Threads
        var main: Channel
        var admin: Channel?
        var tlsReload: RepeatedTask?
    }

    private enum LifecycleState {
        case idle
        case running(Listeners)
        case stopping
        case stopped
    }

    /// Checks the configuration; files are read when the proxy starts.
    public init(configuration: Configuration, logger: Logger = Logger(label: "vnc-proxy")) throws {
        if configuration.secretKey?.isEmpty == true { throw ConfigurationError("the secret key must not be empty") }
        guard configuration.secretKey != nil || !configuration.publicKeyPaths.isEmpty || configuration.jwksFilePath != nil else {
            throw ConfigurationError("no key to verify tokens with: set a secret key, public keys or a JWKS file")
        }
        guard (0...65535).contains(configuration.port) else { throw ConfigurationError("port must be 0...65535") }
        if (configuration.tlsCertificatePath == nil) != (configuration.tlsKeyPath == nil) {
            throw ConfigurationError("a TLS listener needs both the certificate and the key file")
        }
        if let adminPort = configuration.adminPort, !(0...65535).contains(adminPort) {
            throw ConfigurationError("admin port must be 0...65535")
        }
        if configuration.trustAuthRequestHeader && configuration.trustedProxies.isEmpty {
            throw ConfigurationError("trusting X-Auth-Request-Token needs the trusted proxy addresses it may come from")
        }
        guard (1024...(64 << 20)).contains(configuration.maxFrameSize) else {
            throw ConfigurationError("max frame size must be between 1 KiB and 64 MiB")
        }
        self.endpoint = try UpstreamEndpoint(url: configuration.remoteURL)
        if configuration.localDevMode && self.endpoint.useTLS {
            throw ConfigurationError("local dev mode speaks plain ws://; the remote URL \(configuration.remoteURL) asks for TLS")
        }
        self.upstreamPath = try UpstreamPath(template: configuration.apiPathTemplate,
                                             preserveSession: configuration.preserveSession)
        self.configuration = configuration
        self.logger = logger
        self.metrics = configuration.metricsFactory.map { ProxyMetrics(factory: $0) } ?? ProxyMetrics()
    }

    /// The address the listener is bound to while running, e.g. to learn the port picked for `port: 0`.
    public var localAddress: SocketAddress? {
        self.state.withLockedValue { state in
            if case .running(let listeners) = state { return listeners.main.localAddress }
            return nil
        }
    }

    /// The admin listener's address while running, when `adminPort` is configured.
    public var adminAddress: SocketAddress? {
        self.state.withLockedValue { state in
            if case .running(let listeners) = state { return listeners.admin?.localAddress }
            return nil
        }
    }

    /// Sessions relaying right now.
    public var activeSessionCount: Int { self.registry.sessionCount }

    /// Open client connections, relaying or not.
    public var openConnectionCount: Int { self.registry.connectionCount }

    // MARK: - Running

    /// Binds the listener and returns its address; the proxy runs on its own threads until `stop()`.
    @discardableResult
    public func runInThread() throws -> SocketAddress {
        let (threads, bootstraps) = try self.prepare()
        do {
            let main = try bootstraps.main.bind(host: self.configuration.host, port: self.configuration.port).wait()
            let admin = try self.bindAdmin(bootstraps.admin, closingOnFailure: main).wait()
            return self.started(Listeners(threads: threads, main: main, admin: admin), tls: bootstraps.tls)
        } catch {
            self.abandonStart(threads: threads)
            throw error
        }
    }

    /// Runs in the foreground: returns when another thread calls `stop()`.
    public func run() throws {
        try self.runInThread()
        self.waitUntilStopped()
    }

    /// Runs until the task is cancelled (then stops gracefully) or `stop()` is called.
    public func run() async throws {
        let (threads, bootstraps) = try self.prepare()
        do {
            let main = try await bootstraps.main.bind(host: self.configuration.host, port: self.configuration.port).get()
            let admin = try await self.bindAdmin(bootstraps.admin, closingOnFailure: main).get()
            _ = self.started(Listeners(threads: threads, main: main, admin: admin), tls: bootstraps.tls)
        } catch {
            self.abandonStart(threads: threads)
            throw error
        }
        await withTaskCancellationHandler {
            await self.waitUntilStopped()
        } onCancel: {
            Thread { self.stop() }.start()
        }
    }

    /// Stops accepting, closes every session with 1001 and waits for them (up to the close timeout),
    /// then releases the port and the threads. Stopping a proxy that is not running does nothing.
    public func stop() {
        let running: Listeners? = self.state.withLockedValue { state in
            guard case .running(let listeners) = state else { return nil }
            state = .stopping
            return listeners
        }
        guard let listeners = running else {
            // Another caller may be stopping right now: return only once it has finished.
            if case .stopping = self.state.withLockedValue({ $0 }) { self.waitUntilStopped() }
            return
        }
        let group = listeners.threads.group
        listeners.tlsReload?.cancel()
        // Readiness goes false first; during the delay new upgrades are still answered (503), so load
        // balancers that have not yet noticed get a clear refusal rather than a refused connection.
        self.registry.beginDraining()
        if self.configuration.shutdownDelay > .zero {
            self.logger.info("draining: readiness is false; closing the listener after the shutdown delay")
            Thread.sleep(forTimeInterval: Double(self.configuration.shutdownDelay.nanoseconds) / 1e9)
        }
        try? listeners.main.close().wait()
        // Sessions get the close timeout to finish their close handshakes; then the rest is cut.
        let loop = group.next()
        let drained = loop.makePromise(of: Void.self)
        EventLoopFuture.andAllComplete(self.registry.drain(), on: loop).cascade(to: drained)
        loop.scheduleTask(in: self.configuration.closeTimeout + .milliseconds(500)) { drained.succeed() }
        try? drained.futureResult.wait()
        self.registry.closeAll()
        try? listeners.admin?.close().wait()
        listeners.threads.shutdown()
        self.state.withLockedValue { $0 = .stopped }
        self.stopped.lock()
        self.stopped.unlock(withValue: 1)
        self.logger.info("proxy stopped")
    }

    // MARK: - Starting

    private struct Bootstraps {
        var main: ServerBootstrap
        var admin: ServerBootstrap?
        var tls: ListenerTLS?
    }

    private func prepare() throws -> (Threads, Bootstraps) {
        try self.state.withLockedValue { state in
            switch state {
            case .idle, .stopped:
                state = .stopping  // claims the start; `started` or `abandonStart` settle it
            case .running, .stopping:
                throw ConfigurationError("the proxy is already running")
            }
        }
        do {
            let credentials = self.configuration.localDevMode
                ? KubernetesCredentials.none
                : try KubernetesCredentials(caFilePath: self.configuration.caFilePath,
                                            tokenFilePath: self.configuration.tokenFilePath,
                                            useTLS: self.endpoint.useTLS)
            let (verifier, jwks) = try self.makeVerifier()
            let tls = try self.configuration.tlsCertificatePath.map { certificatePath in
                try ListenerTLS(certificatePath: certificatePath, keyPath: self.configuration.tlsKeyPath ?? "")
            }
            let web = try self.configuration.webRoot.map { try self.makeWebResponder(rootPath: $0) }
            let loopCount = self.configuration.threads > 0 ? self.configuration.threads : System.coreCount
            let threads = Threads(group: MultiThreadedEventLoopGroup(numberOfThreads: loopCount), fileIO: web?.files.threadPool)
            // The watch ends when the group shuts down.
            _ = jwks?.watch(on: threads.group.next())
            return (threads, self.makeBootstraps(group: threads.group, credentials: credentials, verifier: verifier, tls: tls, web: web))
        } catch {
            self.state.withLockedValue { $0 = .idle }
            throw error
        }
    }

    /// Walks the web root once (see `WebRoot` for why), says what will be served, and starts the
    /// thread pool that reads the files.
    private func makeWebResponder(rootPath: String) throws -> WebResponder {
        let root = try WebRoot(path: rootPath)
        let hasNoVNC = root.resolve(ConsolePage.noVNCModule) != nil
        self.logger.info("serving static files", metadata: [
            "web_root": "\(rootPath)",
            "trusted_symlink_targets": "\(root.trustedRealPaths.count - 1)",
            "console_page": "\(hasNoVNC ? ConsolePage.pagePath : "off: no \(ConsolePage.noVNCModule) in the web root")",
        ])
        if root.scanTruncated {
            self.logger.warning("the web root has more than \(WebRoot.maxScannedEntries) entries; symlinks past them are not trusted")
        }
        let fileIO = NIOThreadPool(numberOfThreads: 2)
        fileIO.start()
        return WebResponder(files: StaticFiles(root: root, threadPool: fileIO),
                            console: ConsolePage(prefix: ProxyRoute.segments(ofPrefix: self.configuration.hostPathPrefix)),
                            logger: self.logger)
    }

    /// Reads the public key files and the JWKS file: a key that cannot be used stops the start, like an
    /// unreadable CA file.
    private func makeVerifier() throws(ConfigurationError) -> (TokenVerifier, JWKSFile?) {
        let configuration = self.configuration
        var publicKeys: [VerificationKey] = []
        for reference in configuration.publicKeyPaths {
            let key = try VerificationKey.load(reference: reference)
            publicKeys.append(key)
            self.logger.info("public key loaded", metadata: ["alg": "\(key.algorithm)", "kid": "\(key.kid)"])
        }
        let jwks = try configuration.jwksFilePath.map { path throws(ConfigurationError) in
            try JWKSFile(path: path, logger: self.logger)
        }
        if let jwks {
            self.logger.info("JWKS file loaded", metadata: [
                "path": "\(jwks.path)", "kids": "\(jwks.keys.keys.map(\.kid).joined(separator: ","))",
            ])
        }
        let verifier = TokenVerifier(
            secret: configuration.secretKey, publicKeys: publicKeys, jwks: jwks,
            audience: configuration.audience, issuer: configuration.issuer,
            leewaySeconds: Double(configuration.tokenLeeway.nanoseconds) / 1e9)
        return (verifier, jwks)
    }

    private func makeBootstraps(
        group: MultiThreadedEventLoopGroup,
        credentials: KubernetesCredentials,
        verifier: TokenVerifier,
        tls: ListenerTLS?,
        web: WebResponder?
    ) -> Bootstraps {
        let configuration = self.configuration
        let readiness = Readiness(
            registry: self.registry,
            requiredFiles: configuration.localDevMode
                ? [] : [configuration.tokenFilePath] + (self.endpoint.useTLS ? [configuration.caFilePath] : []))
        let metricsEndpoint = self.metrics.registry.map(MetricsEndpoint.init(registry:))
        let responder = ProxyResponder(
            prefix: ProxyRoute.segments(ofPrefix: configuration.hostPathPrefix),
            verifier: verifier,
            dialer: UpstreamDialer(
                endpoint: self.endpoint,
                path: self.upstreamPath,
                credentials: credentials,
                maxFrameSize: configuration.maxFrameSize,
                timeout: configuration.upstreamConnectTimeout,
                writeBufferHighWaterMark: configuration.writeBufferHighWaterMark),
            registry: self.registry,
            limiter: SessionLimiter(caps: .init(total: configuration.maxSessions,
                                                perSubject: configuration.maxSessionsPerSubject,
                                                perVM: configuration.maxSessionsPerVM)),
            rateLimiter: configuration.maxRequestsPerSecondPerClient.map(RequestRateLimiter.init(requestsPerSecond:)),
            originPolicy: OriginPolicy(allowed: configuration.allowedOrigins, requireOrigin: configuration.requireOrigin),
            clientAddresses: ClientAddressResolver(trustedProxies: configuration.trustedProxies),
            trustAuthHeader: configuration.trustAuthRequestHeader,
            closeTimeout: configuration.closeTimeout,
            sessionPolicy: .init(pingInterval: configuration.pingInterval, idleTimeout: configuration.idleTimeout,
                                 maxDuration: configuration.maxSessionDuration),
            enforceTokenExpiry: configuration.enforceTokenExpiry,
            metrics: self.metrics,
            metricsEndpoint: configuration.adminPort == nil ? metricsEndpoint : nil,
            readiness: readiness,
            web: web,
            logger: self.logger)
        let limits = ServerUpgradeHandler.Limits(requestTimeout: configuration.requestTimeout,
                                                 maxFrameSize: configuration.maxFrameSize)
        let registry = self.registry
        let main = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: configuration.writeBufferHighWaterMark / 2,
                                                                   high: configuration.writeBufferHighWaterMark))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    registry.track(channel)
                    if let tls {
                        // The request deadline starts now, so it covers the TLS handshake too.
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                    }
                    try channel.pipeline.syncOperations.addUpgradableHTTPServer(responder: responder, limits: limits)
                }
            }
        guard configuration.adminPort != nil else { return Bootstraps(main: main, admin: nil, tls: tls) }
        let adminResponder = AdminResponder(readiness: readiness, metricsEndpoint: metricsEndpoint)
        let admin = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addUpgradableHTTPServer(responder: adminResponder, limits: limits)
                }
            }
        return Bootstraps(main: main, admin: admin, tls: tls)
    }

    /// Binds the admin listener when there is one; a failure closes the main listener already bound.
    private func bindAdmin(_ bootstrap: ServerBootstrap?, closingOnFailure main: Channel) -> EventLoopFuture<Channel?> {
        guard let bootstrap, let port = self.configuration.adminPort else {
            return main.eventLoop.makeSucceededFuture(nil)
        }
        let host = self.configuration.adminHost ?? self.configuration.host
        return bootstrap.bind(host: host, port: port).map { Optional($0) }.flatMapError { error in
            main.close().flatMapThrowing { throw error }
        }
    }

    private func started(_ listeners: Listeners, tls: ListenerTLS?) -> SocketAddress {
        var listeners = listeners
        if let tls {
            let interval = self.configuration.tlsReloadInterval
            let logger = self.logger
            let loop = listeners.threads.group.next()
            listeners.tlsReload = loop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) { _ in
                // Reading the files happens on NIO's blocking-I/O pool, never on an event loop.
                NIOThreadPool.singleton.runIfActive(eventLoop: loop) { tls.reloadIfChanged(logger: logger) }.map { _ in }
            }
        }
        self.registry.reset()
        self.stopped.lock()
        self.stopped.unlock(withValue: 0)
        self.state.withLockedValue { $0 = .running(listeners) }
        let address = listeners.main.localAddress!
        if let secret = self.configuration.secretKey, secret.utf8.count < 32 {
            self.logger.warning("the secret key is shorter than 32 bytes; HS256 tokens are only as strong as their secret")
        }
        self.logger.info("proxy listening", metadata: [
            "address": "\(address)",
            "upstream": "\(self.endpoint.hostHeader)",
            "tls_upstream": "\(self.endpoint.useTLS)",
            "tls_listener": "\(tls != nil)",
            "prefix": "\(self.configuration.hostPathPrefix)",
            "admin": "\(listeners.admin?.localAddress.map { "\($0)" } ?? "none")",
        ])
        return address
    }

    private func abandonStart(threads: Threads) {
        threads.shutdown()
        self.state.withLockedValue { $0 = .idle }
    }

    private func waitUntilStopped() {
        self.stopped.lock(whenValue: 1)
        self.stopped.unlock()
    }

    /// Suspends until the proxy has stopped. The wait blocks a thread of its own: neither a
    /// cooperative thread nor one of Dispatch's few global-queue threads may be held that long.
    public func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread {
                self.waitUntilStopped()
                continuation.resume()
            }.start()
        }
    }
}
