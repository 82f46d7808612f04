import Foundation
import NIOCore
import NIOPosix
import NIOWebSocket

/// Counters and samples of one load generator run. The load generator has one event loop, and
/// this object is only touched on it (the main thread reads it through `submit`).
final class LoopStats: @unchecked Sendable {
    var bytes = 0
    var recording = false
    /// Round trips (or handshake latencies) in nanoseconds, while `recording`.
    var samples: [UInt64] = []
    var completed = 0
    var failed = 0
    var lastError = ""
    /// Held sessions, for their liveness check; only kept when `keepProbes`.
    var probes: [EchoProbe] = []
    var keepProbes = false

    func fail(_ error: Error) {
        self.failed += 1
        self.lastError = "\(error)"
    }
}

@inline(__always) func nowNanos() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

/// Bulk download: counts payload bytes from a `source` VMI.
final class DownloadHandler: ScenarioHandler, @unchecked Sendable {
    let stats: LoopStats
    init(stats: LoopStats) { self.stats = stats }

    override func received(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        self.stats.bytes += payload.readableBytes
    }
}

/// Bulk upload: writes masked binary messages to a `sink` VMI whenever the socket takes them.
final class UploadHandler: ScenarioHandler, @unchecked Sendable {
    let stats: LoopStats
    let chunk: ByteBuffer
    init(stats: LoopStats, chunk: ByteBuffer) {
        self.stats = stats
        self.chunk = chunk
    }

    override func started(context: ChannelHandlerContext) { self.pump(context: context) }
    override func writable(context: ChannelHandlerContext) { self.pump(context: context) }

    private func pump(context: ChannelHandlerContext) {
        // Flush every frame: a TLS handler holds unflushed writes back from the socket, so without a
        // flush the channel would never become unwritable and this loop would never end.
        while context.channel.isActive && context.channel.isWritable {
            context.writeAndFlush(self.wrapOutboundOut(
                WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: self.chunk)), promise: nil)
            self.stats.bytes += self.chunk.readableBytes
        }
    }
}

/// Interactive traffic against an `echo` VMI: 8-byte messages carrying their send time.
///
/// `closedLoop`: the next message goes as soon as the echo is back (one session, pure RTT).
/// Otherwise one message every `interval` (open loop, so a slow proxy cannot slow the sender).
/// `firstEcho` completes on the first echo: the session works end to end.
final class EchoProbe: ScenarioHandler, @unchecked Sendable {
    enum Mode { case closedLoop, paced(TimeAmount), once }

    let stats: LoopStats
    let mode: Mode
    let closeAfterFirst: Bool
    private var firstEcho: EventLoopPromise<Void>?
    private var pending: ByteBuffer?
    private var timer: RepeatedTask?

    init(stats: LoopStats, mode: Mode, firstEcho: EventLoopPromise<Void>?, closeAfterFirst: Bool = false) {
        self.stats = stats
        self.mode = mode
        self.firstEcho = firstEcho
        self.closeAfterFirst = closeAfterFirst
    }

    override func started(context: ChannelHandlerContext) {
        if self.stats.keepProbes { self.stats.probes.append(self) }
        self.send(context: context)
        if case .paced(let interval) = self.mode {
            let phase = TimeAmount.nanoseconds(Int64.random(in: 0..<max(1, interval.nanoseconds)))
            self.timer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval + phase, delay: interval) { [weak self] _ in
                guard let self, let context = self.context else { return }
                self.send(context: context)
            }
        }
    }

    override func ended(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
        if let promise = self.firstEcho {
            self.firstEcho = nil
            promise.fail(BenchError("closed before the first echo"))
        }
    }

    /// Sends one probe now, and calls `promise` back on its echo (the liveness check of held sessions).
    func probe(_ promise: EventLoopPromise<Void>) {
        guard let context = self.context, context.channel.isActive else {
            return promise.fail(BenchError("session closed"))
        }
        self.firstEcho = promise
        self.send(context: context)
    }

    func stop() {
        self.timer?.cancel()
        self.timer = nil
        self.sendClose()
    }

    private func send(context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 8)
        buffer.writeInteger(nowNanos())
        context.writeAndFlush(self.wrapOutboundOut(
            WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: buffer)), promise: nil)
    }

    override func received(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        var payload = payload
        if self.pending == nil { self.pending = payload } else { self.pending!.writeBuffer(&payload) }
        let now = nowNanos()
        var echoes = 0
        while let sent = self.pending!.readInteger(as: UInt64.self) {
            echoes += 1
            if self.stats.recording { self.stats.samples.append(now &- sent) }
        }
        if self.pending!.readableBytes == 0 { self.pending = nil }
        guard echoes > 0 else { return }
        self.stats.completed += echoes
        if let promise = self.firstEcho {
            self.firstEcho = nil
            promise.succeed(())
            if self.closeAfterFirst { return self.sendClose() }
        }
        if case .closedLoop = self.mode { self.send(context: context) }
    }
}

/// Runs `count` jobs with at most `concurrency` in flight, on one event loop; completes with the number
/// that failed.
final class Pool: @unchecked Sendable {
    private let loop: EventLoop
    private let count: Int
    private let job: (Int) -> EventLoopFuture<Void>
    private var next = 0
    private var running = 0
    private var failed = 0
    private let done: EventLoopPromise<Int>

    private init(loop: EventLoop, count: Int, job: @escaping (Int) -> EventLoopFuture<Void>) {
        self.loop = loop
        self.count = count
        self.job = job
        self.done = loop.makePromise()
    }

    static func run(on loop: EventLoop, count: Int, concurrency: Int,
                    job: @escaping @Sendable (Int) -> EventLoopFuture<Void>) -> EventLoopFuture<Int> {
        loop.flatSubmit {
            let pool = Pool(loop: loop, count: count, job: job)
            if count == 0 { pool.done.succeed(0) }
            for _ in 0..<min(concurrency, count) { pool.startNext() }
            return pool.done.futureResult
        }
    }

    private func startNext() {
        guard self.next < self.count else {
            if self.running == 0 { self.done.succeed(self.failed) }
            return
        }
        let index = self.next
        self.next += 1
        self.running += 1
        self.job(index).whenComplete { result in
            self.running -= 1
            if case .failure = result { self.failed += 1 }
            self.startNext()
        }
    }
}

/// Opens sessions back to back for the handshake rate: each is connect, upgrade (through the proxy:
/// token check, upstream TCP + TLS + upgrade), one echo, close; `workers` of them in flight.
final class HandshakeDriver: @unchecked Sendable {
    let target: Target
    let loop: EventLoop
    let stats: LoopStats
    let paths: [String]
    var stopped = false
    var inFlight = 0

    init(target: Target, loop: EventLoop, stats: LoopStats, paths: [String]) {
        self.target = target
        self.loop = loop
        self.stats = stats
        self.paths = paths
    }

    func start() {
        for index in self.paths.indices { self.runWorker(index) }
    }

    private func runWorker(_ index: Int) {
        guard !self.stopped else { return }
        self.inFlight += 1
        let started = nowNanos()
        let stats = self.stats
        let firstEcho = self.loop.makePromise(of: Void.self)
        let timeout = self.loop.scheduleTask(in: .seconds(10)) { firstEcho.fail(BenchError("handshake timed out")) }
        self.target.open(path: self.paths[index], on: self.loop) {
            EchoProbe(stats: stats, mode: .once, firstEcho: firstEcho, closeAfterFirst: true)
        }.whenFailure { firstEcho.fail($0) }
        firstEcho.futureResult.whenComplete { result in
            timeout.cancel()
            self.inFlight -= 1
            switch result {
            case .success:
                if stats.recording { stats.samples.append(nowNanos() - started) }
                self.runWorker(index)
            case .failure(let error):
                stats.fail(error)
                self.loop.scheduleTask(in: .milliseconds(20)) { self.runWorker(index) }
            }
        }
    }
}

// MARK: - /proc readings

enum ProcFS {
    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// utime + stime of a process in seconds, nil if it is gone.
    static func cpuSeconds(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / self.ticksPerSecond
    }

    /// VmRSS in KiB.
    static func rssKiB(pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "")
        }
        return nil
    }
}

/// Processes whose CPU use is reported per measured window, e.g. `proxy=1234` or `nginx=10,11`.
struct Watch: Sendable {
    var name: String
    var pids: [Int32]

    init?(argument: String) {
        let parts = argument.split(separator: "=", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        self.name = String(parts[0])
        self.pids = parts[1].split(separator: ",").compactMap { Int32($0) }
        if self.pids.isEmpty { return nil }
    }

    init(name: String, pids: [Int32]) {
        self.name = name
        self.pids = pids
    }

    func cpuSeconds() -> Double { self.pids.compactMap(ProcFS.cpuSeconds(pid:)).reduce(0, +) }
    func rssKiB() -> Int { self.pids.compactMap(ProcFS.rssKiB(pid:)).reduce(0, +) }
}
