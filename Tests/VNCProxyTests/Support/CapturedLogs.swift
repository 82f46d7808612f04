import Logging
import NIOConcurrencyHelpers

/// Collects every log line the proxy writes, rendered with its metadata, so tests can read them.
final class CapturedLogs: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    var all: [String] { self.lines.withLockedValue { $0 } }

    func handler() -> LogHandler {
        Handler(logs: self)
    }

    fileprivate func append(_ line: String) {
        self.lines.withLockedValue { $0.append(line) }
    }

    private struct Handler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = self.metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 })
            let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            self.logs.append("\(event.level) \(event.message) \(rendered)")
        }
    }
}
