import CoreMetrics
import NIOCore

extension WebsocketProxy {
    /// Every setting of the proxy. The first five are the original LabOrchestrator proxy's, with the same meaning.
    public struct Configuration: Sendable {
        /// The Kubernetes API server, e.g. `wss://10.96.0.1:443` (`https://` works too); `ws://` in local dev mode.
        public var remoteURL: String
        /// The upstream path; `{namespace}` and `{vmi_name}` are replaced by validated names.
        public var apiPathTemplate: String
        /// Plain `ws://` upstream with no service-account CA or token: for a laptop, never a cluster.
        public var localDevMode: Bool
        /// The shared HS256 secret that LabOrchestrator signs its tokens with; nil refuses HS256 tokens
        /// (then public keys or a JWKS file must be configured).
        public var secretKey: String?
        /// Path segments before `/TOKEN/VMNAME`, e.g. `ws_proxy` or `/a/b`; empty for none.
        public var hostPathPrefix: String

        /// Address to listen on.
        public var host: String
        /// Port to listen on; 0 picks a free one (read it from `WebsocketProxy.localAddress`).
        public var port: Int
        /// The CA bundle that signed the API server's certificate. System roots are never trusted upstream.
        public var caFilePath: String
        /// The bearer token for the API server; re-read for every upstream connection (tokens rotate).
        public var tokenFilePath: String
        /// When set, `?preserveSession=VALUE` is added to the upstream URL (KubeVirt 1.7+ refuses a second viewer).
        public var preserveSession: Bool?

        /// The largest websocket frame accepted from either side. noVNC sends each message as one frame;
        /// KubeVirt sends about 10 KiB chunks; a clipboard paste is the largest message a viewer sends.
        public var maxFrameSize: Int
        /// Leeway when checking `exp` and `nbf`, for clock skew between LabOrchestrator and the proxy.
        public var tokenLeeway: TimeAmount
        /// Deadline for a client's HTTP request to arrive in full.
        public var requestTimeout: TimeAmount
        /// Deadline for the upstream TCP connect, TLS and websocket handshake together.
        public var upstreamConnectTimeout: TimeAmount
        /// How long a close handshake may take before the connection is dropped.
        public var closeTimeout: TimeAmount
        /// Write buffer high-water mark per connection: above it the other side stops being read.
        public var writeBufferHighWaterMark: Int
        /// Event loop threads; 0 means one per core.
        public var threads: Int

        /// Ping both legs this often; a leg that has not answered the previous ping by then is dead.
        /// KubeVirt sends no pings, and load balancers cut idle VNC sessions. nil: no pings.
        public var pingInterval: TimeAmount?
        /// End a session after this long without a data byte either way. nil: never.
        public var idleTimeout: TimeAmount?
        /// End every session after this long. nil: no limit.
        public var maxSessionDuration: TimeAmount?
        /// End a session with 1008 `token expired` when its token's `exp` passes.
        public var enforceTokenExpiry: Bool
        /// Sessions at once: in total, per token subject (`id`), per VM. nil: no cap. Over a cap: 429.
        public var maxSessions: Int?
        public var maxSessionsPerSubject: Int?
        public var maxSessionsPerVM: Int?
        /// New requests per second from one client address; over it: 429. nil: no limit.
        public var maxRequestsPerSecondPerClient: Int?
        /// Browser origins allowed to open sessions: `https://lab.example.org` or `*.example.org`.
        /// Empty allows any. Requests without `Origin` (curl, native viewers) pass unless `requireOrigin`.
        public var allowedOrigins: [String]
        public var requireOrigin: Bool
        /// Addresses of reverse proxies whose `X-Forwarded-For` is believed, for logs and per-client limits.
        public var trustedProxies: [String]
        /// Take the token from `X-Auth-Request-Token` when the request comes from a trusted proxy.
        public var trustAuthRequestHeader: Bool
        /// A directory whose files are served to plain GET and HEAD requests on the proxy's port, e.g.
        /// `/usr/share/novnc`; with noVNC in it, `/vnc?vm=VM#token=TOKEN` is a console page. nil: none.
        /// Websocket upgrades always go to the proxy route, whatever files exist.
        public var webRoot: String?

        /// TLS on the listener (`wss://` straight to the proxy): PEM certificate chain and private key.
        /// Both or neither. The files are checked every `tlsReloadInterval` and reloaded when they change.
        public var tlsCertificatePath: String?
        public var tlsKeyPath: String?
        public var tlsReloadInterval: TimeAmount

        /// A second listener for `/healthz`, `/readyz` and `/metrics` only; when set, `/metrics` leaves the
        /// main port (which may face the internet). nil: probes and metrics on the main port.
        public var adminPort: Int?
        /// Address of the admin listener; nil: the main `host`.
        public var adminHost: String?
        /// Where metrics go. nil: a Prometheus registry of the proxy's own, served at `/metrics`.
        /// An app with its own metrics backend passes that backend's factory; no `/metrics` is served then.
        public var metricsFactory: (any MetricsFactory)?
        /// On stop, how long `/readyz` answers 503 (and new upgrades 503) before the listener closes,
        /// so load balancers take this instance out first. Then sessions get `closeTimeout` to close.
        public var shutdownDelay: TimeAmount

        /// PEM public keys (RSA, P-256, Ed25519) for RS256, ES256 and EdDSA tokens, each `PATH` or
        /// `KID=PATH` (a kid holds no `/`). Without a kid, a key's kid is its RFC 7638 thumbprint.
        public var publicKeyPaths: [String]
        /// A JWKS file of public keys, re-read when it changes; a broken new file keeps the last good keys.
        public var jwksFilePath: String?
        /// When set, every token's `aud` (a string or an array) must contain it.
        public var audience: String?
        /// When set, every token's `iss` must equal it.
        public var issuer: String?

        public static let defaultAPIPathTemplate =
            "/apis/subresources.kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances/{vmi_name}/vnc"
        public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

        public init(
            remoteURL: String = "wss://kubernetes.default.svc:443",
            apiPathTemplate: String = Configuration.defaultAPIPathTemplate,
            localDevMode: Bool = false,
            secretKey: String? = nil,
            hostPathPrefix: String = "",
            host: String = "0.0.0.0",
            port: Int = 5001,
            caFilePath: String = Configuration.serviceAccountDirectory + "/ca.crt",
            tokenFilePath: String = Configuration.serviceAccountDirectory + "/token",
            preserveSession: Bool? = nil,
            maxFrameSize: Int = 1 << 20,
            tokenLeeway: TimeAmount = .seconds(5),
            requestTimeout: TimeAmount = .seconds(10),
            upstreamConnectTimeout: TimeAmount = .seconds(10),
            closeTimeout: TimeAmount = .seconds(3),
            writeBufferHighWaterMark: Int = 256 * 1024,
            threads: Int = 0,
            pingInterval: TimeAmount? = .seconds(30),
            idleTimeout: TimeAmount? = nil,
            maxSessionDuration: TimeAmount? = nil,
            enforceTokenExpiry: Bool = false,
            maxSessions: Int? = 10_000,
            maxSessionsPerSubject: Int? = nil,
            maxSessionsPerVM: Int? = nil,
            maxRequestsPerSecondPerClient: Int? = nil,
            allowedOrigins: [String] = [],
            requireOrigin: Bool = false,
            trustedProxies: [String] = [],
            trustAuthRequestHeader: Bool = false,
            tlsCertificatePath: String? = nil,
            tlsKeyPath: String? = nil,
            tlsReloadInterval: TimeAmount = .seconds(10),
            adminPort: Int? = nil,
            adminHost: String? = nil,
            metricsFactory: (any MetricsFactory)? = nil,
            shutdownDelay: TimeAmount = .zero,
            webRoot: String? = nil,
            publicKeyPaths: [String] = [],
            jwksFilePath: String? = nil,
            audience: String? = nil,
            issuer: String? = nil
        ) {
            self.remoteURL = remoteURL
            self.apiPathTemplate = apiPathTemplate
            self.localDevMode = localDevMode
            self.secretKey = secretKey
            self.hostPathPrefix = hostPathPrefix
            self.host = host
            self.port = port
            self.caFilePath = caFilePath
            self.tokenFilePath = tokenFilePath
            self.preserveSession = preserveSession
            self.maxFrameSize = maxFrameSize
            self.tokenLeeway = tokenLeeway
            self.requestTimeout = requestTimeout
            self.upstreamConnectTimeout = upstreamConnectTimeout
            self.closeTimeout = closeTimeout
            self.writeBufferHighWaterMark = writeBufferHighWaterMark
            self.threads = threads
            self.pingInterval = pingInterval
            self.idleTimeout = idleTimeout
            self.maxSessionDuration = maxSessionDuration
            self.enforceTokenExpiry = enforceTokenExpiry
            self.maxSessions = maxSessions
            self.maxSessionsPerSubject = maxSessionsPerSubject
            self.maxSessionsPerVM = maxSessionsPerVM
            self.maxRequestsPerSecondPerClient = maxRequestsPerSecondPerClient
            self.allowedOrigins = allowedOrigins
            self.requireOrigin = requireOrigin
            self.trustedProxies = trustedProxies
            self.trustAuthRequestHeader = trustAuthRequestHeader
            self.tlsCertificatePath = tlsCertificatePath
            self.tlsKeyPath = tlsKeyPath
            self.tlsReloadInterval = tlsReloadInterval
            self.adminPort = adminPort
            self.adminHost = adminHost
            self.metricsFactory = metricsFactory
            self.shutdownDelay = shutdownDelay
            self.webRoot = webRoot
            self.publicKeyPaths = publicKeyPaths
            self.jwksFilePath = jwksFilePath
            self.audience = audience
            self.issuer = issuer
        }
    }
}

/// A setting that cannot work, found before the proxy starts.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
