import Logging

enum LoggingSetup {
    enum Format: String, CaseIterable {
        case text
        case json
    }

    /// Accepts swift-log names and the Python names the original used (`WARNING`, `CRITICAL`).
    static func level(named name: String?) -> Logger.Level? {
        guard let name = name?.lowercased() else { return .info }
        switch name {
        case "warning", "warn": return .warning
        case "critical", "fatal": return .critical
        default: return Logger.Level(rawValue: name)
        }
    }

    static func format(named name: String?) throws -> Format {
        guard let name else { return .text }
        guard let format = Format(rawValue: name.lowercased()) else {
            throw StartupError(description: "--log-format must be text or json, got \(name)")
        }
        return format
    }

    static func bootstrap(levelName: String?, format: Format = .text) -> Logger {
        let level = self.level(named: levelName) ?? .info
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
        return Logger(label: "vnc-proxy")
    }
}
