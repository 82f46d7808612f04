/// The `Content-Type` of a served file, by its extension. Browsers refuse ES modules served with a
/// non-JavaScript type, and with `nosniff` they refuse scripts and styles with a wrong one, so the
/// table matters for noVNC; anything not in it goes out as `application/octet-stream`.
enum ContentType {
    static let html = "text/html; charset=utf-8"
    static let javaScript = "text/javascript; charset=utf-8"
    static let css = "text/css; charset=utf-8"
    static let unknown = "application/octet-stream"

    private static let byExtension: [String: String] = [
        "html": html, "htm": html,
        "js": javaScript, "mjs": javaScript,
        "css": css,
        "json": "application/json",
        "txt": "text/plain; charset=utf-8",
        "svg": "image/svg+xml",
        "png": "image/png",
        "jpg": "image/jpeg", "jpeg": "image/jpeg",
        "gif": "image/gif",
        "webp": "image/webp",
        "ico": "image/x-icon",
        "wasm": "application/wasm",
        "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf",
        "mp3": "audio/mpeg", "oga": "audio/ogg",
    ]

    static func of(fileExtension: Substring?) -> String {
        guard let fileExtension else { return self.unknown }
        return self.byExtension[fileExtension.lowercased()] ?? self.unknown
    }
}
