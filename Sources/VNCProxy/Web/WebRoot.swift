#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The directory static files are served from, and the places its files may really be.
///
/// Symlinks: a request path is resolved with `realpath`, and the file is served only when its real
/// path lies inside the root's real path, or inside the real target of a symlink that was under the
/// root when the proxy started. Those targets are recorded once, by a walk of the root at start-up
/// (following symlinked directories, so links inside them count too). The reason: a web root is
/// often built from symlinks (noVNC's files linked into a folder next to a custom page, a Kubernetes
/// ConfigMap volume, distribution packages that link into `/usr/share/javascript`), and the operator
/// who put them there meant them. A symlink that appears or is re-pointed later, to anywhere not
/// recorded, is refused (404): whoever can write into the root after start cannot widen what is served.
/// What is recorded is a place, not a link: a new link into an already trusted place is served.
struct WebRoot: Sendable {
    /// As configured, for messages.
    let path: String
    /// The root's real path, first, then the recorded symlink targets.
    let trustedRealPaths: [String]
    /// The start-up walk stopped at `maxScannedEntries`: symlinks past that point are not trusted.
    let scanTruncated: Bool

    static let maxScannedEntries = 20_000

    /// Blocking; called once when the proxy starts.
    init(path: String) throws(ConfigurationError) {
        guard let real = Self.realPath(path), Self.isDirectory(real) else {
            throw ConfigurationError("the web root \(path) is not a readable directory")
        }
        guard real != "/" else { throw ConfigurationError("the web root must not be /") }
        self.path = path
        (self.trustedRealPaths, self.scanTruncated) = Self.scan(root: real)
    }

    var realPath: String { self.trustedRealPaths[0] }

    /// Blocking. The real path of a file or directory under the root, or nil when there is none or
    /// it lies outside every trusted place.
    func resolve(_ relativePath: String) -> String? {
        let joined = relativePath.isEmpty ? self.realPath : self.realPath + "/" + relativePath
        guard let real = Self.realPath(joined), self.isTrusted(real) else { return nil }
        return real
    }

    func isTrusted(_ realPath: String) -> Bool {
        self.trustedRealPaths.contains { Self.isInside(realPath, directory: $0) }
    }

    /// Whether `path` is `directory` or below it; both real paths. Compares whole components, so
    /// `/srv/web2` is not inside `/srv/web`.
    static func isInside(_ path: String, directory: String) -> Bool {
        path == directory || path.hasPrefix(directory.hasSuffix("/") ? directory : directory + "/")
    }

    // MARK: - The start-up walk

    private static func scan(root: String) -> (trusted: [String], truncated: Bool) {
        var trusted = [root]
        var pending = [root]
        var scanned = 0
        while let directory = pending.popLast() {
            for name in Self.entries(of: directory) {
                scanned += 1
                if scanned > Self.maxScannedEntries { return (trusted, true) }
                let entry = directory + "/" + name
                var status = stat()
                guard lstat(entry, &status) == 0 else { continue }
                switch status.st_mode & S_IFMT {
                case S_IFDIR:
                    pending.append(entry)
                case S_IFLNK:
                    guard let target = Self.realPath(entry),
                          !trusted.contains(where: { Self.isInside(target, directory: $0) }) else { continue }
                    trusted.append(target)
                    if Self.isDirectory(target) { pending.append(target) }
                default:
                    continue
                }
            }
        }
        return (trusted, false)
    }

    private static func entries(of directory: String) -> [String] {
        guard let stream = opendir(directory) else { return [] }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR
    }
}
