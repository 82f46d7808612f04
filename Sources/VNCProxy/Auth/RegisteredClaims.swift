/// The registered claims (RFC 7519 §4.1) checked when the proxy is configured to: `iss` and `aud`.
///
/// Read apart from `TokenClaims`, and only when a check is configured, so that without one a token is
/// read exactly as before these checks existed (LabOrchestrator sets neither claim).
struct RegisteredClaims: Codable, Sendable, Equatable {
    var iss: String?
    var aud: Audience?

    /// One audience is written as a string, several as an array (RFC 7519 §4.1.3); both are read.
    struct Audience: Codable, Sendable, Equatable {
        var values: [String]

        init(_ values: [String]) {
            self.values = values
        }

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let single = try? container.decode(String.self) {
                self.values = [single]
            } else {
                self.values = try container.decode([String].self)
            }
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            if self.values.count == 1 {
                try container.encode(self.values[0])
            } else {
                try container.encode(self.values)
            }
        }
    }
}
