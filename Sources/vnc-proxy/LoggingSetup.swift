import Logging

enum LoggingSetup {
    /// Accepts swift-log names and the Python names the original used (`WARNING`, `CRITICAL`).
    static func level(named name: String?) -> Logger.Level? {
        guard let name = name?.lowercased() else { return .info }
        switch name {
        case "warning", "warn": return .warning
        case "critical", "fatal": return .critical
        default: return Logger.Level(rawValue: name)
        }
    }

    static func bootstrap(levelName: String?) -> Logger {
        let level = self.level(named: levelName) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "vnc-proxy")
    }
}
