#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// Finds and reads the files of a `WebRoot`. Everything that touches the disk (realpath, open, stat,
/// read) runs on the proxy's own file thread pool, so a slow disk never stalls an event loop.
struct StaticFiles: Sendable {
    /// Larger files are not served: noVNC's largest is about 100 KiB, and each read is held in memory.
    static let maxFileSize = 8 << 20

    let root: WebRoot
    let threadPool: NIOThreadPool

    struct File: Sendable {
        var validators: CacheValidators
        /// nil when it was not read: a HEAD, or a conditional GET that matched.
        var body: ByteBuffer?
    }

    enum Lookup: Sendable {
        case file(File)
        /// A directory, with its `index.html` if it has one.
        case directory(index: File?)
        case tooLarge
        case missing
    }

    /// Looks `path` up, reading the file only when `shouldRead` says so for its validators.
    func lookup(
        _ path: WebPath, on eventLoop: EventLoop, shouldRead: @escaping @Sendable (CacheValidators) -> Bool
    ) -> EventLoopFuture<Lookup> {
        let root = self.root
        return self.threadPool.runIfActive(eventLoop: eventLoop) {
            guard let real = root.resolve(path.relativePath) else { return .missing }
            switch Self.openFile(real, shouldRead: shouldRead) {
            case .directory:
                let indexPath = path.relativePath.isEmpty ? "index.html" : path.relativePath + "/index.html"
                guard let index = root.resolve(indexPath), case .file(let file) = Self.openFile(index, shouldRead: shouldRead) else {
                    return .directory(index: nil)
                }
                return .directory(index: file)
            case .file where path.namesDirectory:
                return .missing
            case let other:
                return other
            }
        }
    }

    /// Blocking. Opens a real path without following a symlink swapped in since `realpath`, and
    /// without waiting on a FIFO; only directories and regular files come back.
    private static func openFile(_ realPath: String, shouldRead: (CacheValidators) -> Bool) -> Lookup {
        let descriptor = open(realPath, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { return .missing }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return .missing }
        switch status.st_mode & S_IFMT {
        case S_IFDIR:
            return .directory(index: nil)
        case S_IFREG:
            break
        default:
            return .missing
        }
        let size = Int(status.st_size)
        guard size <= Self.maxFileSize else { return .tooLarge }
        #if canImport(Darwin)
        let modified = status.st_mtimespec
        #else
        let modified = status.st_mtim
        #endif
        let validators = CacheValidators(size: size, modifiedSeconds: Int(modified.tv_sec), modifiedNanoseconds: Int(modified.tv_nsec))
        guard shouldRead(validators) else { return .file(File(validators: validators, body: nil)) }
        guard let body = Self.readAll(descriptor, size: size) else { return .missing }
        return .file(File(validators: validators, body: body))
    }

    /// Up to `size` bytes: a file that shrank since `fstat` gives what it still has.
    private static func readAll(_ descriptor: CInt, size: Int) -> ByteBuffer? {
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        while buffer.readableBytes < size {
            let wanted = size - buffer.readableBytes
            var failed = false
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { pointer in
                let count = read(descriptor, pointer.baseAddress, min(pointer.count, wanted))
                failed = count < 0
                return max(count, 0)
            }
            if failed {
                guard errno == EINTR else { return nil }
            } else if count == 0 {
                break
            }
        }
        return buffer
    }
}
