import Foundation
import ServiceLifecycle
import VNCProxy

/// Runs the proxy inside a ServiceGroup: SIGTERM or SIGINT starts a graceful stop.
struct ProxyService: Service {
    let proxy: WebsocketProxy
    /// The demo starts the proxy itself (to print its port) and only needs it kept until a signal.
    var alreadyRunning = false

    func run() async throws {
        try await withGracefulShutdownHandler {
            if self.alreadyRunning {
                await self.proxy.waitUntilStopped()
            } else {
                try await self.proxy.run()
            }
        } onGracefulShutdown: {
            // stop() blocks while sessions close: a thread of its own, off the cooperative pool.
            Thread { self.proxy.stop() }.start()
        }
    }
}
