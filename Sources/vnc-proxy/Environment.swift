import Foundation

/// The original proxy's environment variables; a flag, when given, wins over its variable.
enum Environment {
    static func string(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }

    /// `1`, `true`, `yes` and `on` (any case) are true, like Python's truthy strings in the original.
    static func flag(_ name: String) -> Bool {
        guard let value = self.string(name)?.lowercased() else { return false }
        return ["1", "true", "yes", "on"].contains(value)
    }
}

/// A one-line error and exit code 2, for settings that cannot work: no stack trace, no usage dump.
struct StartupError: Error, CustomStringConvertible {
    var description: String
}

/// Writes to stdout at once: `print` is block-buffered when stdout is a pipe or a file, and scripts
/// read the demo's URL and token while it keeps running.
func writeOutput(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

func exitWithStartupError(_ message: String) -> Never {
    FileHandle.standardError.write(Data("vnc-proxy: error: \(message)\n".utf8))
    exit(2)
}
