/// What the simulated cluster holds and how strict its API server is.
public struct SimulatorConfiguration: Sendable {
    /// A virtual machine instance the simulator knows.
    public struct VMI: Sendable, Hashable {
        public enum Phase: Sendable, Hashable {
            case running
            /// virt-api answers 400 `VMI is not running`.
            case notRunning
            /// virt-api answers 400 `No graphics devices are present.`
            case noGraphics
        }

        public var namespace: String
        public var name: String
        public var phase: Phase
        public var backend: ConsoleBackend

        public init(namespace: String, name: String, phase: Phase = .running, backend: ConsoleBackend = .testPattern) {
            self.namespace = namespace
            self.name = name
            self.phase = phase
            self.backend = backend
        }
    }

    public var host: String
    /// 0 picks a free port; read it from `KubeVirtSimulator.port`.
    public var port: Int
    /// TLS like a real API server; off only to stand in for a plain `ws://` dev upstream.
    public var useTLS: Bool
    /// The file holding the one bearer token accepted; re-read per request, so tests can rotate it.
    /// nil accepts any request, like `kubectl proxy`.
    public var tokenFilePath: String?
    /// Namespaces the proxy's service account may open consoles in; nil grants all (403 otherwise).
    public var grantedNamespaces: Set<String>?
    public var vmis: [VMI]
    /// The service account named in 403 messages.
    public var serviceAccount: String
    public var maxFrameSize: Int
    /// virt-handler writes in chunks of about this size.
    public var chunkSize: Int

    public init(
        host: String = "127.0.0.1",
        port: Int = 0,
        useTLS: Bool = true,
        tokenFilePath: String? = nil,
        grantedNamespaces: Set<String>? = nil,
        vmis: [VMI] = [],
        serviceAccount: String = "system:serviceaccount:vnc-proxy:vnc-proxy",
        maxFrameSize: Int = 16 << 20,
        chunkSize: Int = 10 * 1024
    ) {
        self.host = host
        self.port = port
        self.useTLS = useTLS
        self.tokenFilePath = tokenFilePath
        self.grantedNamespaces = grantedNamespaces
        self.vmis = vmis
        self.serviceAccount = serviceAccount
        self.maxFrameSize = maxFrameSize
        self.chunkSize = chunkSize
    }
}

/// What sits behind a VMI's VNC console.
public enum ConsoleBackend: Sendable, Hashable {
    /// An in-process RFB 3.8 server (security type None) showing a test pattern.
    case builtInRFB(width: Int, height: Int, name: String)
    /// A real VNC server at this TCP address, e.g. Xvnc on 127.0.0.1:5901.
    case tcp(host: String, port: Int)
    /// Every byte received is sent back: for transfer and latency tests.
    case echo
    /// Sends chunks of `chunkSize` bytes as fast as the viewer reads them, ignoring input: bulk download.
    case source
    /// Discards what it receives: bulk upload.
    case sink
    /// Never reads after the upgrade: an API server or VM that has stopped reading (a hung node).
    case unread
    /// Resets the TCP connection (RST, no close frame) when the first viewer byte arrives:
    /// an API server or node that dies mid-session.
    case resetOnInput

    /// The built-in RFB server at 640×480.
    public static let testPattern = ConsoleBackend.builtInRFB(width: 640, height: 480, name: "kubevirt-simulator")

    /// Parses `HOST:PORT` as a TCP backend, `rfb` or `echo`.
    public init?(argument: String) {
        switch argument {
        case "rfb": self = .testPattern
        case "echo": self = .echo
        case "source": self = .source
        case "sink": self = .sink
        case "unread": self = .unread
        case "reset": self = .resetOnInput
        default:
            guard let colon = argument.lastIndex(of: ":"), let port = Int(argument[argument.index(after: colon)...]) else {
                return nil
            }
            var host = String(argument[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self = .tcp(host: host, port: port)
        }
    }
}
