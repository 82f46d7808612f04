import NIOCore
import NIOHTTP1

/// The proxy's own console page, `/vnc?vm=VM#token=TOKEN`, with its script `/vnc.js` and style
/// `/vnc.css`: noVNC's `core/rfb.js` from the web root, connected to this proxy's `[/PREFIX]/VM` route
/// with the token in the Kubernetes bearer subprotocol.
///
/// The token sits in the URL fragment, which browsers never send, so it reaches no server and no
/// access log; the script takes it out of the address bar and history before it connects. The page is
/// generated here because it must know the path prefix; its script is a separate file so the
/// Content-Security-Policy can forbid every inline script.
struct ConsolePage: Sendable {
    static let pagePath = "/vnc"
    static let scriptPath = "/vnc.js"
    static let stylePath = "/vnc.css"
    /// What the page needs from the web root.
    static let noVNCModule = "core/rfb.js"

    /// Scripts and styles only from this origin and never inline; images from here or `data:` (noVNC
    /// draws its cursor as a data URL); connections back to this origin only (`'self'` covers ws/wss).
    static let contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    struct Resource: Sendable {
        var contentType: String
        var body: ByteBuffer
        /// Besides the ones every web answer gets.
        var headers: HTTPHeaders
    }

    private let page: ByteBuffer

    init(prefix: [Substring]) {
        let prefixPath = prefix.isEmpty ? "" : "/" + prefix.joined(separator: "/")
        self.page = ByteBuffer(string: Self.html(prefixPath: prefixPath))
    }

    /// The resource at a request path (without its query), or nil when the path is not one of the page's.
    func resource(at path: Substring) -> Resource? {
        switch path {
        case Self.pagePath:
            return Resource(contentType: ContentType.html, body: self.page, headers: [
                "content-security-policy": Self.contentSecurityPolicy,
                "cache-control": "no-store",
                "referrer-policy": "no-referrer",
            ])
        case Self.scriptPath:
            return Resource(contentType: ContentType.javaScript, body: ByteBuffer(string: Self.script),
                            headers: ["cache-control": "no-cache"])
        case Self.stylePath:
            return Resource(contentType: ContentType.css, body: ByteBuffer(string: Self.style),
                            headers: ["cache-control": "no-cache"])
        default:
            return nil
        }
    }

    private static func html(prefixPath: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="vnc-proxy-prefix" content="\(Self.escapedAttribute(prefixPath))">
        <title>VM console</title>
        <link rel="icon" href="data:,">
        <link rel="stylesheet" href="\(Self.stylePath)">
        <link rel="modulepreload" href="/\(Self.noVNCModule)">
        <script type="module" src="\(Self.scriptPath)"></script>
        </head>
        <body>
        <div id="status" role="status" data-state="loading">Loading noVNC</div>
        <div id="screen"></div>
        </body>
        </html>

        """
    }

    private static func escapedAttribute(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// Written for noVNC 1.3.0 (Debian bookworm), whose RFB takes a WebSocket in place of a URL.
    static let script = #"""
        // vnc-proxy's console page: opens VM ?vm= through this proxy with noVNC, the token from #token=.
        import RFB from '/core/rfb.js';

        const statusBar = document.getElementById('status');
        const show = (state, text) => {
            statusBar.dataset.state = state;
            statusBar.textContent = text;
        };

        // Read the token, then drop the fragment from the address bar and the history entry.
        const token = new URLSearchParams(location.hash.slice(1)).get('token');
        if (location.hash) {
            history.replaceState(null, '', location.pathname + location.search);
        }
        const vm = new URLSearchParams(location.search).get('vm') || '';
        const prefix = document.querySelector('meta[name="vnc-proxy-prefix"]').content;

        // Unpadded base64url (RFC 4648 §5) of the token's UTF-8 bytes.
        function base64url(text) {
            let binary = '';
            for (const byte of new TextEncoder().encode(text)) {
                binary += String.fromCharCode(byte);
            }
            return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
        }

        function connect() {
            const url = (location.protocol === 'https:' ? 'wss' : 'ws') + '://' + location.host + prefix + '/' + vm;
            const protocols = ['binary', 'base64url.bearer.authorization.k8s.io.' + base64url(token)];
            // The page opens the socket and hands it to RFB: only the socket's close event carries the
            // close code and reason, and RFB's own disconnect event leaves them out.
            const socket = new WebSocket(url, protocols);
            let opened = false, closeEvent = null, disconnected = false, problem = '', desktopName = '';

            const showEnd = () => {
                if (problem) {
                    show('failed', 'Disconnected: ' + problem);
                } else if (closeEvent && !opened) {
                    // A refused upgrade: browsers do not show the page the HTTP status or the JSON reason.
                    show('failed', 'Disconnected: the proxy refused the connection (code ' + closeEvent.code + '). '
                        + 'The token may be invalid, expired or not for VM ' + vm + ', or the VM is not running; '
                        + 'the proxy log says which.');
                } else if (closeEvent) {
                    const reason = closeEvent.reason ? ': ' + closeEvent.reason : '';
                    show(closeEvent.wasClean ? 'disconnected' : 'failed',
                        'Disconnected (code ' + closeEvent.code + reason + ')');
                } else {
                    show('failed', 'Disconnected');
                }
            };

            socket.addEventListener('open', () => { opened = true; });
            socket.addEventListener('close', (event) => {
                closeEvent = event;
                if (disconnected) { showEnd(); }
            });

            const rfb = new RFB(document.getElementById('screen'), socket);
            rfb.scaleViewport = true;
            show('connecting', 'Connecting to ' + vm);
            rfb.addEventListener('desktopname', (event) => { desktopName = event.detail.name; });
            rfb.addEventListener('connect', () => { show('connected', 'Connected to ' + desktopName); });
            rfb.addEventListener('securityfailure', (event) => {
                problem = 'the VNC server refused the security handshake'
                    + (event.detail.reason ? ' (' + event.detail.reason + ')' : '');
            });
            rfb.addEventListener('credentialsrequired', () => {
                problem = 'the VNC server asks for a password, which this page does not send';
                rfb.disconnect();
            });
            rfb.addEventListener('disconnect', () => {
                disconnected = true;
                showEnd();
            });
        }

        if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(vm)) {
            show('failed', 'Failed: name the VM in the address, /vnc?vm=VM#token=TOKEN');
        } else if (!token) {
            show('failed', 'Failed: no token; open /vnc?vm=' + vm + '#token=TOKEN');
        } else {
            connect();
        }

        """#

    static let style = """
        html, body { height: 100%; margin: 0; }
        body { display: flex; flex-direction: column; background: #303030; }
        #status { padding: 6px; font: bold 13px sans-serif; text-align: center; color: white; background: #5a6e8c; }
        #status[data-state="connected"] { background: #2e7d32; }
        #status[data-state="failed"] { background: #b3261e; }
        #screen { flex: 1; overflow: hidden; }

        """
}
