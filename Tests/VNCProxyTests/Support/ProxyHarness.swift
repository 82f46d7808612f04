import Foundation
import KubeVirtSimulator
import Logging
import NIOCore
import VNCProxy

/// A live proxy in front of a live TLS simulator, with service-account files in a temporary directory,
/// as the proxy would find them in a pod.
final class ProxyHarness: @unchecked Sendable {
    static let secret = "harness-secret"
    static let namespace = "lab-ns"

    let directory: URL
    let caFile: String
    let tokenFile: String
    let simulator: KubeVirtSimulator
    let proxy: WebsocketProxy
    let logs: CapturedLogs
    let port: Int

    /// - Parameters:
    ///   - vmis: the simulated cluster; by default `lab-ns/vm1` (RFB), `lab-ns/echo` (echo), `lab-ns/stopped` (not running).
    ///   - adjust: changes to the proxy configuration before it starts.
    init(
        vmis: [SimulatorConfiguration.VMI]? = nil,
        grantedNamespaces: Set<String>? = [ProxyHarness.namespace, "other-ns"],
        adjust: @Sendable (inout WebsocketProxy.Configuration) -> Void = { _ in }
    ) throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("vnc-proxy-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        self.caFile = self.directory.appendingPathComponent("ca.crt").path
        self.tokenFile = self.directory.appendingPathComponent("token").path
        try "sa-token-1\n".write(toFile: self.tokenFile, atomically: true, encoding: .utf8)

        self.simulator = try KubeVirtSimulator(configuration: SimulatorConfiguration(
            tokenFilePath: self.tokenFile,
            grantedNamespaces: grantedNamespaces,
            vmis: vmis ?? [
                .init(namespace: Self.namespace, name: "vm1"),
                .init(namespace: Self.namespace, name: "echo", backend: .echo),
                .init(namespace: Self.namespace, name: "stopped", phase: .notRunning),
                .init(namespace: Self.namespace, name: "nographics", phase: .noGraphics),
                .init(namespace: "forbidden-ns", name: "vm1"),
            ]))
        try self.simulator.certificates.writeCA(to: self.caFile)

        var configuration = WebsocketProxy.Configuration(
            remoteURL: self.simulator.url, secretKey: Self.secret, host: "127.0.0.1", port: 0,
            caFilePath: self.caFile, tokenFilePath: self.tokenFile, closeTimeout: .seconds(2), threads: 2)
        adjust(&configuration)
        self.logs = CapturedLogs()
        let logs = self.logs
        self.proxy = try WebsocketProxy(configuration: configuration, logger: Logger(label: "test") { _ in logs.handler() })
        do {
            self.port = try self.proxy.runInThread().port!
        } catch {
            self.simulator.stop()
            throw error
        }
    }

    func shutdown() {
        self.proxy.stop()
        self.simulator.stop()
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// Runs `body` with a fresh harness and always tears it down.
    static func with<T>(
        vmis: [SimulatorConfiguration.VMI]? = nil,
        grantedNamespaces: Set<String>? = [ProxyHarness.namespace, "other-ns"],
        adjust: @escaping @Sendable (inout WebsocketProxy.Configuration) -> Void = { _ in },
        _ body: (ProxyHarness) async throws -> T
    ) async throws -> T {
        // Each harness is two event loop groups, a simulator and a proxy; on 2 cores a hundred of them
        // at once starve each other's event loops and connects time out. A few at a time.
        await HarnessSlots.shared.acquire()
        defer { Task { await HarnessSlots.shared.release() } }
        // Starting and stopping block on NIO futures: keep that off the few cooperative threads,
        // which every other test running in parallel needs.
        let harness = try await offCooperativePool { try ProxyHarness(vmis: vmis, grantedNamespaces: grantedNamespaces, adjust: adjust) }
        do {
            let result = try await body(harness)
            await offCooperativePool { harness.shutdown() }
            return result
        } catch {
            await offCooperativePool { harness.shutdown() }
            throw error
        }
    }

    func token(
        vms: [String] = ["vm1", "echo", "stopped", "nographics", "missing"],
        namespace: String = ProxyHarness.namespace,
        lifetime: Double = 600,
        secret: String = ProxyHarness.secret
    ) throws -> String {
        try TokenSigner(secret: secret).sign(userID: .int(42), namespace: namespace, vmNames: vms, lifetime: lifetime)
    }

    /// Polls `condition` every 20 ms for up to `seconds`; true once it holds.
    func eventually(within seconds: Double = 5, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return condition()
    }

    /// `eventually` for conditions that need to await, such as a request to the proxy.
    func eventually(within seconds: Double = 5, _ condition: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return await condition()
    }
}

/// Runs blocking work on a thread of its own and awaits it. Not Dispatch's global queue: it runs
/// about one thread per core, and the parallel tests would queue behind each other's waits.
func offCooperativePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

func offCooperativePool(_ work: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { continuation in
        Thread {
            work()
            continuation.resume()
        }.start()
    }
}

/// A counting semaphore for harnesses: how many tests may have a live proxy and simulator at once.
actor HarnessSlots {
    static let shared = HarnessSlots(limit: Int(ProcessInfo.processInfo.environment["VNC_PROXY_TEST_HARNESSES"] ?? "") ?? 6)

    private var available: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) {
        self.available = max(1, limit)
    }

    func acquire() async {
        if self.available > 0 {
            self.available -= 1
            return
        }
        await withCheckedContinuation { self.waiting.append($0) }
    }

    func release() {
        if self.waiting.isEmpty {
            self.available += 1
        } else {
            self.waiting.removeFirst().resume()
        }
    }
}
