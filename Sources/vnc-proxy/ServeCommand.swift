import ArgumentParser
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import VNCProxy

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the proxy (the default). Flags override the environment variables named in brackets.")

    @Option(help: "Shared HS256 secret of the tokens [SECRET_KEY]; optional when public keys are given.")
    var secretKey: String?

    @Option(name: .customLong("public-key"),
            help: "PEM public key (RSA, P-256 or Ed25519) for RS256, ES256 or EdDSA tokens, as PATH or KID=PATH. Repeatable.")
    var publicKeys: [String] = []

    @Option(help: "JWKS file of public keys; re-read when it changes.")
    var jwksFile: String?

    @Option(help: "Refuse tokens whose aud does not contain this.")
    var audience: String?

    @Option(help: "Refuse tokens whose iss is not this.")
    var issuer: String?

    @Flag(help: "Plain ws:// upstream, no service-account files [LOCAL_DEV_MODE].")
    var localDevMode = false

    @Option(help: "Address to listen on [HOST] (default 0.0.0.0).")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free one [PORT] (default 5001).")
    var port: Int?

    @Option(help: "Path prefix before /TOKEN/VMNAME, e.g. ws_proxy [HOST_PATH_PREFIX].")
    var hostPathPrefix: String?

    @Option(help: "Kubernetes API URL [WS_REMOTE_URL]; default wss://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT.")
    var remoteURL: String?

    @Option(help: "KubeVirt subresource API version: v1 or v1alpha3.")
    var apiVersion = "v1"

    @Option(help: "Upstream path template with {namespace} and {vmi_name}; overrides --api-version [API_PATH].")
    var apiPath: String?

    @Option(help: "CA bundle of the API server.")
    var caFile = WebsocketProxy.Configuration.serviceAccountDirectory + "/ca.crt"

    @Option(help: "Bearer token file for the API server, re-read per connection.")
    var tokenFile = WebsocketProxy.Configuration.serviceAccountDirectory + "/token"

    @Option(help: "Send ?preserveSession=true|false upstream (KubeVirt 1.7+); not sent by default.")
    var preserveSession: Bool?

    @Option(help: "Largest websocket frame accepted from either side, in bytes.")
    var maxFrameSize = 1 << 20

    @Option(help: "Seconds a client has to send its request, and the upstream to answer.")
    var handshakeTimeout = 10

    @Option(help: "Seconds sessions get to close when the proxy stops.")
    var drainTimeout = 10

    @Option(help: "Event loop threads; 0: one per core [THREADS].")
    var threads: Int?

    @Option(help: "TLS certificate chain (PEM) for the listener: wss:// straight to the proxy; reloaded when it changes [TLS_CERT_FILE].")
    var tlsCert: String?

    @Option(help: "Private key (PEM) for --tls-cert [TLS_KEY_FILE].")
    var tlsKey: String?

    @Option(help: "text or json (one JSON object a line) [LOG_FORMAT].")
    var logFormat: String?

    @Option(help: "A second port for /healthz, /readyz and /metrics only; /metrics then leaves the main port [ADMIN_PORT].")
    var adminPort: Int?

    @Option(help: "Address of the admin listener (default: --host).")
    var adminHost: String?

    @Option(help: "Seconds /readyz answers 503 before the listener closes on SIGTERM, for load balancers to notice.")
    var shutdownDelay = 0

    @Option(help: "trace, debug, info, notice, warning, error or critical [LOGLEVEL].")
    var logLevel: String?

    @Option(help: "Seconds between keepalive pings on both legs; 0 turns them off.")
    var pingInterval = 30

    @Option(help: "End a session after this many seconds without data either way; 0: never.")
    var idleTimeout = 0

    @Option(help: "End every session after this many seconds; 0: no limit.")
    var maxSessionSeconds = 0

    @Flag(help: "End a session with close code 1008 when its token expires.")
    var enforceTokenExpiry = false

    @Option(help: "Most sessions at once; over it new ones get 429.")
    var maxSessions = 10_000

    @Option(help: "Most sessions at once per token subject (id); 0: no cap.")
    var maxSessionsPerUser = 0

    @Option(help: "Most sessions at once per VM; 0: no cap.")
    var maxSessionsPerVM = 0

    @Option(help: "Most new requests per second from one client address; 0: no limit.")
    var maxRequestsPerSecond = 0

    @Option(help: "A browser origin allowed to connect (https://lab.example.org or *.example.org). Repeatable; none: any.")
    var allowedOrigin: [String] = []

    @Flag(help: "Refuse requests without an Origin header (only browsers then).")
    var requireOrigin = false

    @Option(help: "A reverse proxy address whose X-Forwarded-For is trusted. Repeatable.")
    var trustedProxy: [String] = []

    @Flag(help: "Take the token from X-Auth-Request-Token, only from --trusted-proxy addresses.")
    var trustAuthHeader = false

    @Option(help: ArgumentHelp(
        "Serve this directory's files on the same port, and the page /vnc?vm=VM#token=TOKEN if it holds noVNC [WEB_ROOT]; default \(ServeCommand.defaultWebRoot) if it exists; '' turns it off.",
        valueName: "dir"))
    var web: String?

    @Flag(help: "Serve no static files, not even the default web root.")
    var noWeb = false

    /// Where Debian's and Ubuntu's `novnc` packages install noVNC.
    static let defaultWebRoot = "/usr/share/novnc"

    func run() async throws {
        let format: LoggingSetup.Format
        do {
            format = try LoggingSetup.format(named: self.logFormat ?? Environment.string("LOG_FORMAT"))
        } catch {
            exitWithStartupError("\(error)")
        }
        let logger = LoggingSetup.bootstrap(levelName: self.logLevel ?? Environment.string("LOGLEVEL"), format: format)
        let configuration: WebsocketProxy.Configuration
        do {
            configuration = try self.makeConfiguration()
        } catch {
            exitWithStartupError("\(error)")
        }
        let proxy: WebsocketProxy
        do {
            proxy = try WebsocketProxy(configuration: configuration, logger: logger)
            try await ServiceGroup(services: [ProxyService(proxy: proxy)],
                                   gracefulShutdownSignals: [.sigterm, .sigint],
                                   logger: logger).run()
        } catch let error as ConfigurationError {
            exitWithStartupError(error.description)
        }
    }

    func makeConfiguration() throws -> WebsocketProxy.Configuration {
        let secret = self.secretKey ?? Environment.string("SECRET_KEY")
        guard secret != nil || !self.publicKeys.isEmpty || self.jwksFile != nil else {
            throw StartupError(description: "no secret key: set SECRET_KEY or pass --secret-key (or --public-key or --jwks-file)")
        }
        let localDevMode = self.localDevMode || Environment.flag("LOCAL_DEV_MODE")
        guard ["v1", "v1alpha3"].contains(self.apiVersion) else {
            throw StartupError(description: "--api-version must be v1 or v1alpha3")
        }
        let template = self.apiPath ?? Environment.string("API_PATH")
            ?? WebsocketProxy.Configuration.defaultAPIPathTemplate.replacingOccurrences(of: "/v1/", with: "/\(self.apiVersion)/")
        let port = try self.port ?? Environment.string("PORT").map {
            guard let port = Int($0) else { throw StartupError(description: "PORT must be a number, got \($0)") }
            return port
        } ?? 5001
        return WebsocketProxy.Configuration(
            remoteURL: try self.remoteURL ?? Self.remoteURLFromEnvironment(localDevMode: localDevMode),
            apiPathTemplate: template,
            localDevMode: localDevMode,
            secretKey: secret,
            hostPathPrefix: self.hostPathPrefix ?? Environment.string("HOST_PATH_PREFIX") ?? "",
            host: self.host ?? Environment.string("HOST") ?? "0.0.0.0",
            port: port,
            caFilePath: self.caFile,
            tokenFilePath: self.tokenFile,
            preserveSession: self.preserveSession,
            maxFrameSize: self.maxFrameSize,
            requestTimeout: .seconds(Int64(self.handshakeTimeout)),
            upstreamConnectTimeout: .seconds(Int64(self.handshakeTimeout)),
            closeTimeout: .seconds(Int64(self.drainTimeout)),
            threads: try self.threads ?? Environment.string("THREADS").map {
                guard let threads = Int($0), threads >= 0 else { throw StartupError(description: "THREADS must be a count, got \($0)") }
                return threads
            } ?? 0,
            pingInterval: Self.seconds(self.pingInterval),
            idleTimeout: Self.seconds(self.idleTimeout),
            maxSessionDuration: Self.seconds(self.maxSessionSeconds),
            enforceTokenExpiry: self.enforceTokenExpiry,
            maxSessions: self.maxSessions,
            maxSessionsPerSubject: self.maxSessionsPerUser > 0 ? self.maxSessionsPerUser : nil,
            maxSessionsPerVM: self.maxSessionsPerVM > 0 ? self.maxSessionsPerVM : nil,
            maxRequestsPerSecondPerClient: self.maxRequestsPerSecond > 0 ? self.maxRequestsPerSecond : nil,
            allowedOrigins: self.allowedOrigin,
            requireOrigin: self.requireOrigin,
            trustedProxies: self.trustedProxy,
            trustAuthRequestHeader: self.trustAuthHeader,
            tlsCertificatePath: self.tlsCert ?? Environment.string("TLS_CERT_FILE"),
            tlsKeyPath: self.tlsKey ?? Environment.string("TLS_KEY_FILE"),
            adminPort: try self.adminPort ?? Environment.string("ADMIN_PORT").map {
                guard let port = Int($0) else { throw StartupError(description: "ADMIN_PORT must be a number, got \($0)") }
                return port
            },
            adminHost: self.adminHost,
            shutdownDelay: .seconds(Int64(max(0, self.shutdownDelay))),
            webRoot: self.webRoot(),
            publicKeyPaths: self.publicKeys,
            jwksFilePath: self.jwksFile,
            audience: self.audience,
            issuer: self.issuer)
    }

    /// `--no-web`, then `--web`, then `WEB_ROOT` (empty means off), then noVNC where Debian puts it.
    private func webRoot() -> String? {
        if self.noWeb { return nil }
        if let chosen = self.web ?? ProcessInfo.processInfo.environment["WEB_ROOT"] {
            return chosen.isEmpty ? nil : chosen
        }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: Self.defaultWebRoot, isDirectory: &isDirectory)
        return exists && isDirectory.boolValue ? Self.defaultWebRoot : nil
    }

    /// Whole seconds from a flag; 0 (or less) means the policy is off.
    private static func seconds(_ value: Int) -> TimeAmount? {
        value > 0 ? .seconds(Int64(value)) : nil
    }

    /// `WS_REMOTE_URL` first, then the in-cluster service address, then `kubectl proxy`'s default in dev mode.
    static func remoteURLFromEnvironment(localDevMode: Bool) throws -> String {
        if let url = Environment.string("WS_REMOTE_URL") { return url }
        if let host = Environment.string("KUBERNETES_SERVICE_HOST") {
            let port = Environment.string("KUBERNETES_SERVICE_PORT") ?? "443"
            let bracketed = host.contains(":") ? "[\(host)]" : host
            return "\(localDevMode ? "ws" : "wss")://\(bracketed):\(port)"
        }
        if localDevMode { return "ws://127.0.0.1:8001" }
        throw StartupError(description: "no upstream: set WS_REMOTE_URL or KUBERNETES_SERVICE_HOST, or pass --remote-url")
    }
}
