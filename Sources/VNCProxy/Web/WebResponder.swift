import Logging
import NIOCore
import NIOHTTP1
import WebSocketSupport

/// Answers plain (non-websocket) requests from the web root: the console page and static files.
///
/// It answers only for what exists: a request that names no file or directory (or no possible one,
/// see `WebPath`) gets nil, so the proxy's own answers keep every path the web root does not have.
struct WebResponder: Sendable {
    /// noVNC's files are not content-hashed: browsers may keep them an hour, then revalidate by ETag.
    static let assetCacheControl = "public, max-age=3600"
    static let allowedMethods = "GET, HEAD"

    let files: StaticFiles
    let console: ConsolePage
    let logger: Logger

    func answer(_ request: IncomingRequest, on eventLoop: EventLoop) -> EventLoopFuture<UpgradeDecision?> {
        let head = request.head
        let path = head.uri.prefix { $0 != "?" && $0 != "#" }
        if let resource = self.console.resource(at: path) {
            return self.answerConsole(resource, path: path, method: head.method, on: eventLoop)
        }
        guard let webPath = WebPath(uri: head.uri) else { return eventLoop.makeSucceededFuture(nil) }
        let ifNoneMatch = head.headers["if-none-match"]
        let wantsBody = head.method == .GET
        return self.files.lookup(webPath, on: eventLoop) { validators in
            wantsBody && !validators.isMatched(byIfNoneMatch: ifNoneMatch)
        }.map { lookup in
            guard let decision = self.answer(lookup, path: webPath, head: head) else { return nil }
            if case .respond(let status, _, _) = decision {
                self.logger.debug("web request", metadata: [
                    "method": "\(head.method)", "status": "\(status.code)", "file": "/\(webPath.relativePath)"])
            }
            return decision
        }
    }

    private func answer(_ lookup: StaticFiles.Lookup, path: WebPath, head: HTTPRequestHead) -> UpgradeDecision? {
        switch lookup {
        case .missing:
            return nil
        case .tooLarge:
            return ProxyError(.notFound, "file_too_large", "the file is larger than the \(StaticFiles.maxFileSize >> 20) MiB the proxy serves")
                .answer(adding: Self.commonHeaders)
        case _ where !Self.isRead(head.method):
            return Self.methodNotAllowed
        case .file(let file):
            return Self.serve(file, contentType: ContentType.of(fileExtension: path.fileExtension), head: head)
        case .directory(index: nil):
            return ProxyError(.notFound, "not_found", "no index.html here, and directories are not listed")
                .answer(adding: Self.commonHeaders)
        case .directory(index: .some(let index)):
            guard path.namesDirectory else {
                // Relative links in index.html resolve against the directory only with the trailing slash.
                let query = head.uri.firstIndex(of: "?").map { head.uri[$0...] } ?? ""
                var headers = Self.commonHeaders
                headers.add(name: "location", value: String(head.uri.prefix { $0 != "?" }) + "/" + query)
                return .respond(status: .movedPermanently, headers: headers, body: ByteBuffer())
            }
            return Self.serve(index, contentType: ContentType.html, head: head)
        }
    }

    private static func serve(_ file: StaticFiles.File, contentType: String, head: HTTPRequestHead) -> UpgradeDecision {
        var headers = Self.commonHeaders
        headers.add(name: "etag", value: file.validators.entityTag)
        headers.add(name: "last-modified", value: file.validators.lastModified)
        // HTML names the other files, so it is always revalidated; a new noVNC is then picked up at once.
        headers.add(name: "cache-control", value: contentType == ContentType.html ? "no-cache" : Self.assetCacheControl)
        if file.validators.isMatched(byIfNoneMatch: head.headers["if-none-match"]) {
            return .respond(status: .notModified, headers: headers, body: ByteBuffer())
        }
        headers.add(name: "content-type", value: contentType)
        if head.method == .HEAD {
            headers.add(name: "content-length", value: String(file.validators.size))
        }
        return .respond(status: .ok, headers: headers, body: file.body ?? ByteBuffer())
    }

    private func answerConsole(
        _ resource: ConsolePage.Resource, path: Substring, method: HTTPMethod, on eventLoop: EventLoop
    ) -> EventLoopFuture<UpgradeDecision?> {
        guard Self.isRead(method) else { return eventLoop.makeSucceededFuture(Self.methodNotAllowed) }
        var headers = Self.commonHeaders
        headers.add(contentsOf: resource.headers)
        headers.add(name: "content-type", value: resource.contentType)
        let page = UpgradeDecision.respond(status: .ok, headers: headers, body: resource.body)
        guard path == ConsolePage.pagePath else { return eventLoop.makeSucceededFuture(page) }
        // The page is no use without noVNC; say so rather than serve a page that cannot load.
        return self.files.lookup(Self.noVNCModule, on: eventLoop) { _ in false }.map { lookup in
            if case .file = lookup { return page }
            return ProxyError(.notFound, "novnc_not_found",
                              "no noVNC in the proxy's web root: /\(ConsolePage.noVNCModule) is missing")
                .answer(adding: Self.commonHeaders)
        }
    }

    private static let noVNCModule = WebPath(uri: "/" + ConsolePage.noVNCModule)!

    private static func isRead(_ method: HTTPMethod) -> Bool {
        method == .GET || method == .HEAD
    }

    /// On every web answer: browsers must take the content type as given, never guess one.
    private static let commonHeaders: HTTPHeaders = ["x-content-type-options": "nosniff"]

    private static let methodNotAllowed: UpgradeDecision = {
        var headers = Self.commonHeaders
        headers.add(name: "allow", value: Self.allowedMethods)
        return ProxyError(.methodNotAllowed, "method_not_allowed", "only GET and HEAD are served here").answer(adding: headers)
    }()
}
