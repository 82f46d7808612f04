/// The claims of a LabOrchestrator token (`lab-orchestrator-lib-auth`), exactly as it writes them:
///
///     {"id": 5, "exp": 1632137911.79,
///      "lab_instance": {"lab_id": 1, "lab_instance_id": 9, "namespace_name": "pentest-ubuntu-3-9",
///                       "allowed_vmi_names": ["ubuntu"], "additional_data": null}}
public struct TokenClaims: Codable, Sendable, Equatable {
    /// The user the token was issued to.
    public var id: Identifier
    /// Expiry, seconds since 1970; PyJWT callers write a float (`time.time() + 600`).
    public var exp: Double
    /// Not before, seconds since 1970; LabOrchestrator does not set it but other issuers may.
    public var nbf: Double?
    public var labInstance: LabInstance

    public struct LabInstance: Codable, Sendable, Equatable {
        public var labID: Identifier
        public var labInstanceID: Identifier
        public var namespaceName: String
        public var allowedVMINames: [String]

        public init(labID: Identifier, labInstanceID: Identifier, namespaceName: String, allowedVMINames: [String]) {
            self.labID = labID
            self.labInstanceID = labInstanceID
            self.namespaceName = namespaceName
            self.allowedVMINames = allowedVMINames
        }

        enum CodingKeys: String, CodingKey {
            case labID = "lab_id"
            case labInstanceID = "lab_instance_id"
            case namespaceName = "namespace_name"
            case allowedVMINames = "allowed_vmi_names"
        }
    }

    public init(id: Identifier, exp: Double, nbf: Double? = nil, labInstance: LabInstance) {
        self.id = id
        self.exp = exp
        self.nbf = nbf
        self.labInstance = labInstance
    }

    enum CodingKeys: String, CodingKey {
        case id, exp, nbf
        case labInstance = "lab_instance"
    }
}

/// LabOrchestrator's ids are `Union[str, int]`: both forms round-trip unchanged.
public enum Identifier: Codable, Sendable, Equatable, CustomStringConvertible {
    case int(Int64)
    case string(String)

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            self = .int(number)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .int(let number): try container.encode(number)
        case .string(let string): try container.encode(string)
        }
    }

    public var description: String {
        switch self {
        case .int(let number): return String(number)
        case .string(let string): return string
        }
    }
}
