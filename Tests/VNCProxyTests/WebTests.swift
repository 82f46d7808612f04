import Foundation
import KubeVirtSimulator
import Testing
@testable import VNCProxy
import WebSocketSupport

/// Static files and the console page on the proxy's port (`--web DIR`), over real sockets.
@Suite("Web: static files and the console page")
struct WebTests {
    /// A web root in a temporary directory, with neighbours outside it that must never be served.
    final class Site: Sendable {
        let base: URL
        let root: String
        /// Linked from the root before the proxy starts: a place the web root trusts.
        let library: String
        /// Linked from the root only after the proxy started: never trusted.
        let secrets: String
        static let secret = "TOP SECRET: never served"

        static let files: [String: [UInt8]] = [
            "page.html": Array("<!DOCTYPE html><title>page</title>\n".utf8),
            "app.js": Array("export const answer = 42;\n".utf8),
            "module.mjs": Array("export default 1;\n".utf8),
            "style.css": Array("body { color: teal; }\n".utf8),
            "image.png": [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0xFF, 0xFE, 0x80, 0x00, 0x01],
            "image.svg": Array("<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n".utf8),
            "favicon.ico": [0x00, 0x00, 0x01, 0x00, 0xC3, 0x28],
            "data.json": Array("{\"a\":1}\n".utf8),
            "code.wasm": [0x00, 0x61, 0x73, 0x6D, 0x01, 0x00, 0x00, 0x00],
            "font.woff": Array("wOFF".utf8) + [0x00, 0xF0],
            "font.woff2": Array("wOF2".utf8) + [0x00, 0xF1],
            "notes.txt": Array("plain text\n".utf8),
            "blob.unknownext": [0xDE, 0xAD, 0xBE, 0xEF],
            "nested/index.html": Array("<!DOCTYPE html><title>nested index</title>\n".utf8),
            "nested/deeper/more.css": Array("p { margin: 0; }\n".utf8),
            "plain/readme.txt": Array("a directory without an index\n".utf8),
            ".hidden": Array("dotfile\n".utf8),
        ]

        init(withNoVNC: Bool = true, withBigFile: Bool = false) throws {
            self.base = FileManager.default.temporaryDirectory.appendingPathComponent("vnc-proxy-web-\(UUID().uuidString)")
            self.root = self.base.appendingPathComponent("www").path
            self.library = self.base.appendingPathComponent("library").path
            self.secrets = self.base.appendingPathComponent("secrets").path
            for (path, bytes) in Self.files {
                try Self.write(bytes, to: self.root + "/" + path)
            }
            if withNoVNC {
                try Self.write(Array("export default class RFB {}\n".utf8), to: self.root + "/core/rfb.js")
            }
            if withBigFile {
                try Self.write(Array(repeating: UInt8(ascii: "x"), count: StaticFiles.maxFileSize + 1), to: self.root + "/big.js")
            }
            try Self.write(Array("export const shared = true;\n".utf8), to: self.library + "/lib.js")
            try Self.write(Array(Self.secret.utf8), to: self.secrets + "/secret.txt")
            // Like a web root built from links: a directory and a file pointing out of the root, made before start.
            try FileManager.default.createSymbolicLink(atPath: self.root + "/vendor", withDestinationPath: self.library)
            try FileManager.default.createSymbolicLink(atPath: self.root + "/alias.html", withDestinationPath: "page.html")
        }

        /// Links made once the proxy runs: one out of the root, one to a file in it.
        func addLinksAfterStart() throws {
            try FileManager.default.createSymbolicLink(atPath: self.root + "/escape", withDestinationPath: self.secrets)
            try FileManager.default.createSymbolicLink(atPath: self.root + "/escape.txt", withDestinationPath: self.secrets + "/secret.txt")
            try FileManager.default.createSymbolicLink(atPath: self.root + "/late-alias.js", withDestinationPath: self.root + "/app.js")
        }

        func remove() {
            try? FileManager.default.removeItem(at: self.base)
        }

        static func write(_ bytes: [UInt8], to path: String) throws {
            let url = URL(fileURLWithPath: path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: url)
        }
    }

    /// A harness whose proxy serves `site`, torn down with it.
    static func with<T>(
        _ site: Site, prefix: String = "", _ body: (ProxyHarness) async throws -> T
    ) async throws -> T {
        defer { site.remove() }
        return try await ProxyHarness.with(adjust: {
            $0.webRoot = site.root
            $0.hostPathPrefix = prefix
        }, body)
    }

    static func get(_ port: Int, _ path: String, method: String = "GET", headers: [String] = []) async throws -> RawHTTP.Response {
        try await RawHTTP.exchange(port: port, ([ "\(method) \(path) HTTP/1.1", "Host: 127.0.0.1"] + headers)
            .joined(separator: "\r\n") + "\r\n\r\n")
    }

    // MARK: - Files

    static let typedFiles = [
        ("/page.html", "page.html", "text/html; charset=utf-8"),
        ("/app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/module.mjs", "module.mjs", "text/javascript; charset=utf-8"),
        ("/style.css", "style.css", "text/css; charset=utf-8"),
        ("/image.png", "image.png", "image/png"),
        ("/image.svg", "image.svg", "image/svg+xml"),
        ("/favicon.ico", "favicon.ico", "image/x-icon"),
        ("/data.json", "data.json", "application/json"),
        ("/code.wasm", "code.wasm", "application/wasm"),
        ("/font.woff", "font.woff", "font/woff"),
        ("/font.woff2", "font.woff2", "font/woff2"),
        ("/notes.txt", "notes.txt", "text/plain; charset=utf-8"),
        ("/blob.unknownext", "blob.unknownext", "application/octet-stream"),
        ("/nested/deeper/more.css?v=3", "nested/deeper/more.css", "text/css; charset=utf-8"),
        ("/%6eested/deeper/more.css", "nested/deeper/more.css", "text/css; charset=utf-8"),
    ]

    // One proxy for many requests (in these tests and below): each harness is a proxy and a TLS simulator.
    @Test("Files are served byte for byte with their content type, nosniff and caching headers")
    func servesFiles() async throws {
        try await Self.with(Site()) { harness in
            for (path, file, contentType) in Self.typedFiles {
                let response = try await Self.get(harness.port, path)
                #expect(response.status == 200, "\(path): \(response.raw.prefix(300))")
                #expect(response.header("content-type") == contentType, "\(path)")
                #expect(response.bodyBytes == Site.files[file], "\(path)")
                #expect(response.header("content-length") == String(Site.files[file]!.count), "\(path)")
                #expect(response.header("x-content-type-options") == "nosniff", "\(path)")
                #expect(response.header("etag")?.hasPrefix("\"") == true, "\(path)")
                #expect(response.header("last-modified")?.hasSuffix(" GMT") == true, "\(path)")
                let expectedCaching = contentType.hasPrefix("text/html") ? "no-cache" : WebResponder.assetCacheControl
                #expect(response.header("cache-control") == expectedCaching, "\(path)")
            }
        }
    }

    @Test("ETag from size and mtime: If-None-Match answers 304 without a body, until the file changes")
    func revalidation() async throws {
        let site = try Site()
        try await Self.with(site) { harness in
            let first = try await Self.get(harness.port, "/app.js")
            let tag = try #require(first.header("etag"))
            for condition in [tag, "W/\(tag)", "\"other\", \(tag)", "*"] {
                let again = try await Self.get(harness.port, "/app.js", headers: ["If-None-Match: \(condition)"])
                #expect(again.status == 304, "If-None-Match: \(condition)")
                #expect(again.bodyBytes.isEmpty)
                #expect(again.header("etag") == tag)
                #expect(again.header("cache-control") == WebResponder.assetCacheControl)
            }
            let other = try await Self.get(harness.port, "/app.js", headers: ["If-None-Match: \"not-it\""])
            #expect(other.status == 200)
            #expect(other.bodyBytes == Site.files["app.js"])

            try Site.write(Array("export const answer = 43; // changed\n".utf8), to: site.root + "/app.js")
            let changed = try await Self.get(harness.port, "/app.js", headers: ["If-None-Match: \(tag)"])
            #expect(changed.status == 200)
            #expect(changed.header("etag") != tag)
            #expect(changed.body == "export const answer = 43; // changed\n")
        }
    }

    @Test("HEAD has GET's headers and length, and no body")
    func head() async throws {
        try await Self.with(Site()) { harness in
            for path in ["/image.png", "/page.html", "/vnc?vm=vm1"] {
                let get = try await Self.get(harness.port, path)
                let head = try await Self.get(harness.port, path, method: "HEAD")
                #expect(head.status == 200, "\(path)")
                #expect(head.bodyBytes.isEmpty, "\(path): \(head.raw)")
                #expect(head.header("content-length") == String(get.bodyBytes.count), "\(path)")
                #expect(head.header("content-type") == get.header("content-type"))
                #expect(head.header("etag") == get.header("etag"))
            }
        }
    }

    @Test("Other methods on a file, a directory or the console page get 405 with Allow")
    func methodNotAllowed() async throws {
        try await Self.with(Site()) { harness in
            for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
                for path in ["/app.js", "/nested/", "/vnc?vm=vm1", "/vnc.js"] {
                    let response = try await Self.get(harness.port, path, method: method, headers: ["Content-Length: 0"])
                    #expect(response.status == 405, "\(method) \(path)")
                    #expect(response.errorCode == "method_not_allowed")
                    #expect(response.header("allow") == "GET, HEAD")
                }
            }
        }
    }

    @Test("A directory answers its index.html (after a redirect to the slash), never a listing")
    func directories() async throws {
        try await Self.with(Site()) { harness in
            let index = try await Self.get(harness.port, "/nested/")
            #expect(index.status == 200)
            #expect(index.header("content-type") == "text/html; charset=utf-8")
            #expect(index.bodyBytes == Site.files["nested/index.html"])

            let redirect = try await Self.get(harness.port, "/nested?x=1")
            #expect(redirect.status == 301)
            #expect(redirect.header("location") == "/nested/?x=1")

            for path in ["/plain/", "/plain", "/", "/nested/deeper/"] {
                let response = try await Self.get(harness.port, path)
                #expect(response.status == 404, "\(path)")
                #expect(response.errorCode == "not_found", "\(path)")
                #expect(response.header("content-type") == "application/json")
                #expect(!response.body.contains("readme.txt") && !response.body.contains("more.css"), "no listing")
            }
            let fileAsDirectory = try await Self.get(harness.port, "/app.js/")
            #expect(fileAsDirectory.status == 404)
        }
    }

    @Test("Files over the size cap are not served")
    func sizeCap() async throws {
        try await Self.with(Site(withBigFile: true)) { harness in
            let response = try await Self.get(harness.port, "/big.js")
            #expect(response.status == 404)
            #expect(response.errorCode == "file_too_large")
            #expect(response.bodyBytes.count < 200)
        }
    }

    // MARK: - Escapes

    static let escapes = [
        "/../etc/passwd", "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/%2e%2e/", "/%2E%2E/etc/passwd",
        "/a/%2f..", "/nested/%2f..%2f..%2fsecrets%2fsecret.txt", "/..%2f..%2fetc%2fpasswd", "/..%5c", "/..%5c..%5cetc%5cpasswd",
        "/nested/..\\..\\secrets\\secret.txt", "/%00", "/page.html%00.js", "/nested/../page.html", "/./page.html",
        "/nested/./index.html", "/.hidden", "/%2ehidden", "/nested//index.html", "/%", "/%zz", "/%c0%ae%c0%ae/etc/passwd",
        "/escape/secret.txt", "/escape.txt", "/vendor/../secrets/secret.txt", "/vendor/%2e%2e/secrets/secret.txt",
        "http://127.0.0.1/etc/passwd", "*",
    ]

    @Test("Escape attempts get 4xx and never a file outside the root")
    func escapeAttempts() async throws {
        let site = try Site()
        try await Self.with(site) { harness in
            try site.addLinksAfterStart()
            for path in Self.escapes {
                let response = try await Self.get(harness.port, path)
                #expect((400..<500).contains(response.status ?? 0), "\(path): \(response.raw.prefix(300))")
                #expect(!response.raw.contains(Site.secret), "\(path)")
                #expect(!response.raw.contains("root:x:0:0"), "\(path)")
                #expect(!response.raw.contains("dotfile"), "\(path)")
            }
            #expect(harness.simulator.requests.isEmpty)
        }
    }

    @Test("A raw NUL in the path is refused by the HTTP parser")
    func rawNUL() async throws {
        try await Self.with(Site()) { harness in
            let response = try await RawHTTP.exchange(port: harness.port, "GET /page.html\u{0}.js HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(response.status == 400)
            #expect(!response.raw.contains("<title>page</title>"))
        }
    }

    @Test("Symlinks: those under the root at start are followed, even out of it; later ones only into trusted places")
    func symlinks() async throws {
        let site = try Site()
        try await Self.with(site) { harness in
            try site.addLinksAfterStart()
            let linkedDirectory = try await Self.get(harness.port, "/vendor/lib.js")
            #expect(linkedDirectory.status == 200)
            #expect(linkedDirectory.body == "export const shared = true;\n")
            let linkedFile = try await Self.get(harness.port, "/alias.html")
            #expect(linkedFile.status == 200)
            #expect(linkedFile.bodyBytes == Site.files["page.html"])
            // Added after start, but pointing into the root: the place is trusted, so it is served.
            let lateInside = try await Self.get(harness.port, "/late-alias.js")
            #expect(lateInside.status == 200)
            #expect(lateInside.bodyBytes == Site.files["app.js"])
            // Added after start, pointing out of the root: refused although the target is readable.
            for path in ["/escape/secret.txt", "/escape.txt", "/escape/"] {
                let response = try await Self.get(harness.port, path)
                #expect(response.status == 404, "\(path)")
                #expect(!response.raw.contains(Site.secret))
            }
        }
    }

    // MARK: - Sharing the port with the proxy

    @Test("Websocket upgrades reach the proxy even where a file has the route's name")
    func upgradesStillReachTheProxy() async throws {
        let site = try Site()
        try Site.write(Array("a file called vm1\n".utf8), to: site.root + "/vm1")
        try await Self.with(site) { harness in
            let token = try harness.token()
            let viaPath = try await WebSocketClientProbe.rfb(port: harness.port, path: "/\(token)/vm1")
            #expect(viaPath.width == 640)
            let protocols = ["binary", TokenSource.subprotocolPrefix + Base64URL.encode(Data(token.utf8))]
            let chosen = try await WebSocketClient.withConnection(
                host: "127.0.0.1", port: harness.port, path: "/vm1", subprotocols: protocols) { session in
                _ = try await RFBProbe.run(on: session)
                return session.subprotocol
            }
            #expect(chosen == "binary")
            let plain = try await Self.get(harness.port, "/vm1")
            #expect(plain.body == "a file called vm1\n", "a plain GET gets the file")
        }
    }

    @Test("Plain requests that name no file keep the proxy's answers")
    func proxyAnswersWithoutFile() async throws {
        try await Self.with(Site()) { harness in
            let token = try harness.token()
            let route = try await Self.get(harness.port, "/\(token)/vm1")
            #expect(route.status == 400)
            #expect(route.errorCode == "websocket_upgrade_required")
            let missing = try await Self.get(harness.port, "/missing.js")
            #expect(missing.status == 404)
            #expect(missing.errorCode == "not_found")
            let health = try await Self.get(harness.port, "/healthz")
            #expect(health.status == 200)
            #expect(harness.simulator.requests.isEmpty)
        }
    }

    // MARK: - The console page

    @Test("/vnc?vm= is generated with a strict CSP, no-store, no referrer, and loads core/rfb.js", arguments: ["", "ws_proxy/a"])
    func consolePage(prefix: String) async throws {
        try await Self.with(Site(), prefix: prefix) { harness in
            let page = try await Self.get(harness.port, "/vnc?vm=vm1")
            #expect(page.status == 200)
            #expect(page.header("content-type") == "text/html; charset=utf-8")
            let policy = try #require(page.header("content-security-policy"))
            #expect(policy.contains("default-src 'none'"))
            #expect(policy.contains("script-src 'self'"))
            #expect(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"))
            #expect(page.header("cache-control") == "no-store")
            #expect(page.header("referrer-policy") == "no-referrer")
            #expect(page.header("x-content-type-options") == "nosniff")
            #expect(page.body.contains("/core/rfb.js"))
            #expect(page.body.contains(#"<script type="module" src="/vnc.js"></script>"#))
            #expect(page.body.contains(#"<meta name="vnc-proxy-prefix" content="\#(prefix.isEmpty ? "" : "/" + prefix)">"#))
            let inlineScripts = page.body.components(separatedBy: "<script").dropFirst().filter { !$0.contains("src=") }
            #expect(inlineScripts.isEmpty, "every script is a separate file")

            let script = try await Self.get(harness.port, "/vnc.js")
            #expect(script.status == 200)
            #expect(script.header("content-type") == "text/javascript; charset=utf-8")
            #expect(script.body.contains("import RFB from '/core/rfb.js'"))
            #expect(script.body.contains("'base64url.bearer.authorization.k8s.io.'"))
            #expect(script.body.contains("history.replaceState"))
            let style = try await Self.get(harness.port, "/vnc.css")
            #expect(style.status == 200)
            #expect(style.header("content-type") == "text/css; charset=utf-8")
        }
    }

    @Test("/vnc without noVNC in the web root is a 404 saying so")
    func consolePageWithoutNoVNC() async throws {
        try await Self.with(Site(withNoVNC: false)) { harness in
            let response = try await Self.get(harness.port, "/vnc?vm=vm1")
            #expect(response.status == 404)
            #expect(response.errorCode == "novnc_not_found")
            #expect(response.reason?.contains("core/rfb.js") == true)
            #expect(response.header("content-type") == "application/json")
        }
    }

    static let debianNoVNC = "/usr/share/novnc"

    @Test("Debian's noVNC in /usr/share/novnc is served with the right types",
          .enabled(if: FileManager.default.fileExists(atPath: debianNoVNC + "/core/rfb.js"), "no noVNC in /usr/share/novnc"))
    func debianNoVNCFiles() async throws {
        try await ProxyHarness.with(adjust: { $0.webRoot = Self.debianNoVNC }) { harness in
            for (path, type) in [("/vnc_lite.html", "text/html; charset=utf-8"), ("/core/rfb.js", "text/javascript; charset=utf-8"),
                                 ("/app/styles/base.css", "text/css; charset=utf-8")] {
                let response = try await Self.get(harness.port, path)
                #expect(response.status == 200, "\(path)")
                #expect(response.header("content-type") == type, "\(path)")
                let onDisk = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.debianNoVNC + path)))
                #expect(response.bodyBytes == onDisk, "\(path)")
            }
            let page = try await Self.get(harness.port, "/vnc?vm=vm1")
            #expect(page.status == 200)
        }
    }

    // MARK: - Pieces

    @Test("Request paths decode once and refuse every escape", arguments: [
        ("/core/rfb.js", ["core", "rfb.js"], false), ("/", [], true), ("/a/b/", ["a", "b"], true),
        ("/a%20b.txt?x=/../y", ["a b.txt"], false), ("/%E2%82%AC.txt", ["€.txt"], false),
    ])
    func webPaths(uri: String, segments: [String], namesDirectory: Bool) throws {
        let path = try #require(WebPath(uri: uri))
        #expect(path.segments == segments)
        #expect(path.namesDirectory == namesDirectory)
    }

    @Test("Invalid request paths", arguments: [
        "/..", "/a/../b", "/%2e%2E", "/a%2fb", "/a%5Cb", "/a\\b", "/%00", "/a%0a", "/.git/config", "//a", "/a//b",
        "/%", "/%4", "/%g0", "/%ff", "relative", "", "/" + String(repeating: "a", count: 256),
    ])
    func invalidWebPaths(uri: String) {
        #expect(WebPath(uri: uri) == nil)
    }

    @Test("HTTP dates and entity tags")
    func validators() {
        #expect(CacheValidators.httpDate(secondsSinceEpoch: 784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        let validators = CacheValidators(size: 255, modifiedSeconds: 16, modifiedNanoseconds: 1)
        #expect(validators.entityTag == "\"ff-10.1\"")
        #expect(validators.isMatched(byIfNoneMatch: [" \"a\" ,\t\"ff-10.1\""]))
        #expect(!validators.isMatched(byIfNoneMatch: ["\"ff-10.2\"", "W/\"x\""]))
        #expect(!validators.isMatched(byIfNoneMatch: []))
    }

    @Test("Web roots that cannot work are refused when the proxy starts")
    func badWebRoots() throws {
        for root in ["/nonexistent/web", "/", "/etc/passwd"] {
            let proxy = try WebsocketProxy(configuration: .init(
                remoteURL: "ws://127.0.0.1:1", localDevMode: true, secretKey: "s", host: "127.0.0.1", port: 0, webRoot: root))
            #expect(throws: ConfigurationError.self, "\(root)") { try proxy.runInThread() }
        }
    }
}
