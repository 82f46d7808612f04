import Foundation
import Logging

/// One JSON object a line on standard error, for log pipelines (Loki, Elasticsearch, Cloud Logging):
/// `{"time":…,"level":…,"logger":…,"message":…}` plus the metadata as top-level string fields.
/// The four named fields win over metadata keys of the same name.
struct JSONLogHandler: LogHandler {
    static let reservedKeys: Set<String> = ["time", "level", "logger", "message"]

    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = self.metadata
        if let provided = self.metadataProvider?.get() { fields.merge(provided, uniquingKeysWith: { $1 }) }
        if let metadata = event.metadata { fields.merge(metadata, uniquingKeysWith: { $1 }) }

        var line = "{"
        Self.append("time", Self.timestamp(), to: &line)
        Self.append("level", event.level.rawValue, to: &line)
        Self.append("logger", self.label, to: &line)
        Self.append("message", event.message.description, to: &line)
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) where !Self.reservedKeys.contains(key) {
            Self.append(key, value.description, to: &line)
        }
        line += "}\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    private static func append(_ key: String, _ value: String, to line: inout String) {
        if line.count > 1 { line += "," }
        line += Self.quoted(key) + ":" + Self.quoted(value)
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += String(format: "\\u%04x", scalar.value)
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func timestamp() -> String {
        Date().formatted(.iso8601.year().month().day().timeZone(separator: .omitted).time(includingFractionalSeconds: true)
            .timeSeparator(.colon).dateSeparator(.dash).dateTimeSeparator(.standard))
    }
}
