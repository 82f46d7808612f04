import ArgumentParser
import Foundation
import KubeVirtSimulator
import NIOCore
import NIOPosix

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vncbench",
        abstract: "Load generator and upstream for the vnc-proxy benchmarks (driven by Benchmarks/harness.py).",
        subcommands: [UpstreamCommand.self, LoadCommand.self])
}

/// The upstream: the project's KubeVirt simulator, in this process, with many VMIs, because KubeVirt
/// (and so the simulator) keeps one VNC session per VMI and the scenarios need up to 10,000 at once.
struct UpstreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upstream",
        abstract: "Run the KubeVirt simulator with VMIs NS/src-I (source), NS/sink-I (sink) and NS/echo-I (echo).")

    @Option var host = "127.0.0.1"
    @Option(help: "0 picks a free port; it is printed and written to --port-file.") var port = 0
    @Option var portFile: String?
    @Option var tokenFile: String?
    @Option var caOut: String?
    @Flag(help: "Plain ws:// instead of TLS.") var noTLS = false
    @Option var namespace = "ns"
    @Option var echo = 10_050
    @Option var source = 16
    @Option var sink = 16
    @Option(help: "Bytes per frame from source VMIs (virt-handler writes about 10 KiB).") var chunkSize = 10 * 1024
    @Option var threads = 1
    @Option(help: """
        How src VMIs produce: tcp (the simulator's TCP console backend reading from an in-process TCP byte \
        source, as virt-handler relays QEMU's VNC socket) or builtin (the simulator's own source console).
        """)
    var sourceVia = "tcp"

    func run() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: self.threads)
        var sourceBackend = ConsoleBackend.source
        if self.sourceVia == "tcp" {
            let blaster = try ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteSource(chunkSize: 64 * 1024))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).wait()
            sourceBackend = .tcp(host: "127.0.0.1", port: blaster.localAddress!.port!)
        }
        // Lookups scan the list in order: the VMIs used by the timed scenarios come first.
        var vmis: [SimulatorConfiguration.VMI] = []
        for i in 0..<self.source { vmis.append(.init(namespace: self.namespace, name: "src-\(i)", backend: sourceBackend)) }
        for i in 0..<self.sink { vmis.append(.init(namespace: self.namespace, name: "sink-\(i)", backend: .sink)) }
        for i in 0..<self.echo { vmis.append(.init(namespace: self.namespace, name: "echo-\(i)", backend: .echo)) }
        let simulator = try KubeVirtSimulator(
            configuration: SimulatorConfiguration(
                host: self.host, port: self.port, useTLS: !self.noTLS, tokenFilePath: self.tokenFile,
                vmis: vmis, chunkSize: self.chunkSize),
            group: group)
        if let caOut { try simulator.certificates.writeCA(to: caOut) }
        if let portFile { try "\(simulator.port)\n".write(toFile: portFile, atomically: true, encoding: .utf8) }
        FileHandle.standardOutput.write(Data("upstream listening on \(simulator.url) with \(vmis.count) VMIs\n".utf8))
        try simulator.wait()
    }
}

/// A TCP peer that writes as fast as it is read and discards what it receives: the "VNC server" behind
/// the src VMIs.
final class ByteSource: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let chunk: ByteBuffer

    init(chunkSize: Int) {
        self.chunk = ByteBuffer(repeating: 0x5a, count: chunkSize)
    }

    func channelActive(context: ChannelHandlerContext) {
        self.pump(context: context)
        context.fireChannelActive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.pump(context: context)
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    private func pump(context: ChannelHandlerContext) {
        while context.channel.isActive && context.channel.isWritable {
            context.writeAndFlush(self.wrapOutboundOut(self.chunk), promise: nil)
        }
    }
}

struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Run one scenario against one peer; prints one JSON object with a result per measured run.")

    enum Scenario: String, ExpressibleByArgument { case download, upload, rtt, hold, handshake }

    @Option var scenario: Scenario
    @Option(help: "proxy (ws://HOST:PORT/TOKEN/VM) or direct (wss://HOST:PORT/apis/.../vnc).") var target = "proxy"
    @Option var url: String
    @Option(help: "Token secret (proxy targets).") var secret: String?
    @Option var namespace = "ns"
    @Option(help: "CA of the simulator (direct).") var caFile: String?
    @Option(help: "Bearer token file (direct).") var tokenFile: String?
    @Option(help: "Seconds per measured window.") var duration = 3.0
    @Option var runs = 5
    @Option(help: "Windows (or runs) discarded first.") var warmup = 1
    @Option(help: "Concurrent sessions (rtt, hold).") var sessions = 1
    @Option(help: "Sessions being opened at once (handshake workers; connect parallelism for rtt and hold).")
    var concurrency = 32
    @Option(help: "Upload message size in bytes.") var messageSize = 64 * 1024
    @Option(help: "Messages per second per session for rtt; 0 sends the next on each echo.") var rate = 0.0
    @Option(help: "Source/sink VMIs to rotate through, one per run.") var vmCount = 16
    @Option(help: "NAME=PID[,PID] whose CPU use is reported per window. Repeatable.") var watch: [String] = []
    @Option(help: "PIDs whose VmRSS is summed (hold).") var rssPids = ""
    @Option(help: "Seconds to wait after opening held sessions before reading RSS.") var settle = 2.0
    @Option(help: "Seconds given to sessions to wind down between steps.") var pause = 1.0

    func run() throws {
        let targetKind = Target.Kind(rawValue: self.target) ?? .proxy
        let target = try Target(kind: targetKind, url: self.url, namespace: self.namespace, secret: self.secret,
                                caFile: self.caFile, tokenFile: self.tokenFile)
        var watches = try self.watch.map { argument in
            guard let watch = Watch(argument: argument) else { throw BenchError("--watch wants NAME=PID[,PID], got \(argument)") }
            return watch
        }
        watches.append(Watch(name: "loadgen", pids: [getpid()]))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let runner = Runner(command: self, target: target, loop: group.next(), watches: watches)
        var result: [String: Any] = ["scenario": self.scenario.rawValue, "target": self.target]
        switch self.scenario {
        case .download, .upload: result["runs"] = try runner.bulk()
        case .rtt: result.merge(try runner.rtt()) { $1 }
        case .hold: result.merge(try runner.hold()) { $1 }
        case .handshake: result.merge(try runner.handshake()) { $1 }
        }
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }
}

/// The scenarios, driven from the main thread; the sessions live on `loop`.
struct Runner {
    let command: LoadCommand
    let target: Target
    let loop: EventLoop
    let watches: [Watch]
    let stats = LoopStats()

    private func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) throws -> T {
        try self.loop.submit(body).wait()
    }

    /// Sleeps `seconds` and returns the elapsed time and each watched process's CPU use in percent.
    private func window(_ seconds: Double) -> (elapsed: Double, cpu: [String: Double]) {
        let before = self.watches.map { $0.cpuSeconds() }
        let start = nowNanos()
        Thread.sleep(forTimeInterval: seconds)
        let elapsed = Double(nowNanos() - start) / 1e9
        var cpu: [String: Double] = [:]
        for (watch, cpuBefore) in zip(self.watches, before) {
            cpu[watch.name] = ((watch.cpuSeconds() - cpuBefore) / elapsed * 1000).rounded() / 10
        }
        return (elapsed, cpu)
    }

    private static func log(_ text: String) {
        FileHandle.standardError.write(Data("vncbench: \(text)\n".utf8))
    }

    // MARK: bulk

    /// One fresh session per run: MB/s (10^6 bytes) of payload over the window, after a short ramp.
    func bulk() throws -> [[String: Any]] {
        let download = self.command.scenario == .download
        var chunk = ByteBufferAllocator().buffer(capacity: self.command.messageSize)
        chunk.writeRepeatingByte(0xa5, count: self.command.messageSize)
        var results: [[String: Any]] = []
        let stats = self.stats
        for run in 0..<(self.command.warmup + self.command.runs) {
            let vm = (download ? "src-" : "sink-") + "\(run % self.command.vmCount)"
            let path = try self.target.path(vm: vm)
            let channel = try self.target.open(path: path, on: self.loop) { [chunk] in
                download ? DownloadHandler(stats: stats) : UploadHandler(stats: stats, chunk: chunk)
            }.wait()
            Thread.sleep(forTimeInterval: min(0.5, self.command.duration / 4))
            let before = try self.onLoop { stats.bytes }
            let (elapsed, cpu) = self.window(self.command.duration)
            let after = try self.onLoop { stats.bytes }
            let alive = channel.isActive
            try? channel.close().wait()
            Thread.sleep(forTimeInterval: 0.3 * self.command.pause)  // let the peer tear the session down
            let mbps = Double(after - before) / elapsed / 1e6
            Self.log("\(self.command.scenario.rawValue) run \(run): \(String(format: "%.1f", mbps)) MB/s cpu \(cpu)\(alive ? "" : " (session ended early)")")
            if run >= self.command.warmup {
                results.append(["mbps": mbps, "cpu": cpu, "bytes": after - before, "alive": alive])
            }
        }
        return results
    }

    // MARK: sessions

    /// Opens `count` echo sessions (echo-0...) whose handlers stay in `stats.probes`; returns how many failed.
    private func openSessions(count: Int, mode: EchoProbe.Mode, first: Int = 0) throws -> Int {
        let paths = try (first..<(first + count)).map { try self.target.path(vm: "echo-\($0)") }
        let stats = self.stats
        let target = self.target
        let loop = self.loop
        try self.onLoop { stats.keepProbes = true }
        return try Pool.run(on: loop, count: count, concurrency: self.command.concurrency) { index in
            let firstEcho = loop.makePromise(of: Void.self)
            target.open(path: paths[index], on: loop) {
                EchoProbe(stats: stats, mode: mode, firstEcho: firstEcho)
            }.whenFailure { firstEcho.fail($0) }
            firstEcho.futureResult.whenFailure { stats.fail($0) }
            return firstEcho.futureResult
        }.wait()
    }

    private func closeSessions() throws {
        let stats = self.stats
        try self.onLoop {
            for probe in stats.probes { probe.stop() }
            stats.probes = []
        }
    }

    private static func percentiles(_ samples: [UInt64]) -> [String: Any] {
        guard !samples.isEmpty else { return ["count": 0] }
        let sorted = samples.sorted()
        func at(_ q: Double) -> Double {
            Double(sorted[min(sorted.count - 1, Int((Double(sorted.count) * q).rounded(.down)))]) / 1000
        }
        let mean = Double(sorted.reduce(0, +)) / Double(sorted.count) / 1000
        return ["count": sorted.count, "p50": at(0.5), "p99": at(0.99), "p999": at(0.999), "mean": mean, "max": at(1)]
    }

    /// Round trips of 8-byte messages over `sessions` echo sessions, one window per run.
    func rtt() throws -> [String: Any] {
        let sessions = self.command.sessions
        let mode: EchoProbe.Mode = self.command.rate > 0
            ? .paced(.nanoseconds(Int64(1e9 / self.command.rate))) : .closedLoop
        let failed = try self.openSessions(count: sessions, mode: mode)
        let stats = self.stats
        Thread.sleep(forTimeInterval: 0.5 * self.command.pause)
        var runs: [[String: Any]] = []
        for run in 0..<(self.command.warmup + self.command.runs) {
            try self.onLoop { stats.samples.removeAll(keepingCapacity: true); stats.recording = true }
            let (elapsed, cpu) = self.window(self.command.duration)
            let samples = try self.onLoop { stats.recording = false; return stats.samples }
            var result = Self.percentiles(samples)
            result["cpu"] = cpu
            result["per_second"] = Double(samples.count) / elapsed
            Self.log("rtt \(sessions) sessions run \(run): \(result)")
            if run >= self.command.warmup { runs.append(result) }
        }
        try self.closeSessions()
        Thread.sleep(forTimeInterval: self.command.pause)
        let lastError = try self.onLoop { stats.lastError }
        return ["runs": runs, "sessions": sessions, "failed_sessions": failed, "last_error": lastError]
    }

    /// N idle sessions (each has done one echo): the peer's RSS before and after, then a liveness check.
    func hold() throws -> [String: Any] {
        let pids = self.command.rssPids.split(separator: ",").compactMap { Int32($0) }
        let rss = Watch(name: "rss", pids: pids)
        let stats = self.stats
        // Warm-up: a few sessions opened and closed, so the baseline has the code paths paged in.
        _ = try self.openSessions(count: min(50, self.command.sessions), mode: .once)
        try self.closeSessions()
        Thread.sleep(forTimeInterval: 3 * self.command.pause)
        let before = rss.rssKiB()
        let start = nowNanos()
        let failed = try self.openSessions(count: self.command.sessions, mode: .once)
        let openSeconds = Double(nowNanos() - start) / 1e9
        Thread.sleep(forTimeInterval: self.command.settle)
        let after = rss.rssKiB()
        let established = self.command.sessions - failed
        let probeCount = try self.onLoop { stats.probes.count }
        let loop = self.loop
        let dead = try Pool.run(on: loop, count: probeCount, concurrency: 256) { index in
            let promise = loop.makePromise(of: Void.self)
            stats.probes[index].probe(promise)
            return promise.futureResult
        }.wait()
        let afterCheck = rss.rssKiB()
        try self.closeSessions()
        Thread.sleep(forTimeInterval: self.command.pause)
        let perSession = established > 0 ? Double(after - before) / Double(established) : 0
        let lastError = try self.onLoop { stats.lastError }
        Self.log("hold \(self.command.sessions): \(established) open in \(String(format: "%.1f", openSeconds)) s, \(probeCount - dead) alive, RSS \(before) -> \(after) KiB (\(String(format: "%.1f", perSession)) KiB/session)")
        return ["sessions": self.command.sessions, "established": established, "alive": probeCount - dead,
                "rss_before_kib": before, "rss_after_kib": after, "rss_after_check_kib": afterCheck,
                "per_session_kib": perSession, "open_seconds": openSeconds, "last_error": lastError]
    }

    /// New sessions per second with `concurrency` workers, one window per run.
    func handshake() throws -> [String: Any] {
        let workers = self.command.concurrency
        let paths = try (0..<workers).map { try self.target.path(vm: "echo-\($0)") }
        let stats = self.stats
        let driver = HandshakeDriver(target: self.target, loop: self.loop, stats: stats, paths: paths)
        try self.onLoop { driver.start() }
        Thread.sleep(forTimeInterval: 0.5)
        var runs: [[String: Any]] = []
        for run in 0..<(self.command.warmup + self.command.runs) {
            let failedBefore = try self.onLoop { stats.samples.removeAll(keepingCapacity: true); stats.recording = true; return stats.failed }
            let (elapsed, cpu) = self.window(self.command.duration)
            let (samples, failed) = try self.onLoop { stats.recording = false; return (stats.samples, stats.failed) }
            var result = Self.percentiles(samples)
            result["per_second"] = Double(samples.count) / elapsed
            result["failed"] = failed - failedBefore
            result["cpu"] = cpu
            Self.log("handshake run \(run): \(String(format: "%.0f", Double(samples.count) / elapsed))/s, \(failed - failedBefore) failed, cpu \(cpu)")
            if run >= self.command.warmup { runs.append(result) }
        }
        try self.onLoop { driver.stopped = true }
        for _ in 0..<100 where try self.onLoop({ driver.inFlight }) > 0 { Thread.sleep(forTimeInterval: 0.1) }
        Thread.sleep(forTimeInterval: self.command.pause)
        let lastError = try self.onLoop { stats.lastError }
        return ["runs": runs, "workers": workers, "last_error": lastError]
    }
}
