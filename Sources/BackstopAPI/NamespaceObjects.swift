/// Kubernetes objects of the policy's namespace a backup stores beside its dump (Secrets and
/// ConfigMaps chosen by label), encrypted as one object of the backup.
public struct NamespaceObjects: Codable, Sendable, Equatable {
    public struct Selection: Codable, Sendable, Equatable {
        public var selector: LabelSelector

        public init(selector: LabelSelector) { self.selector = selector }
    }

    public var secrets: Selection?
    public var configMaps: Selection?
    /// The account the backup pod runs as to read them (get/list on exactly these kinds):
    /// only then does the pod get an API token.
    public var serviceAccountName: String?

    public init(secrets: Selection? = nil, configMaps: Selection? = nil, serviceAccountName: String? = nil) {
        self.secrets = secrets
        self.configMaps = configMaps
        self.serviceAccountName = serviceAccountName
    }

    /// The kinds this part can hold.
    public enum Kind: String, Sendable, CaseIterable, Codable {
        case secret = "Secret"
        case configMap = "ConfigMap"

        /// The flag and variable that carry the selector to the worker.
        public var workerOption: WorkerOption {
            switch self {
            case .secret: .secrets
            case .configMap: .configMaps
            }
        }
    }

    /// What a backup run reads: each kind's selector in the API's query syntax.
    public struct Resolved: Sendable, Equatable {
        public var selectors: [Kind: String]
        public var serviceAccountName: String
    }

    /// Checked and resolved; `field` is where these objects are written (for messages).
    func resolved(field: String, encrypted: Bool, jobTemplateAccount: String?) throws(BackstopAPIError) -> Resolved {
        var selectors: [Kind: String] = [:]
        for (kind, selection, name) in [(Kind.secret, secrets, "secrets"), (.configMap, configMaps, "configMaps")] {
            guard let selection else { continue }
            selectors[kind] = try selection.selector.query(field: "\(field).\(name).selector")
        }
        guard !selectors.isEmpty else {
            throw BackstopAPIError(field: field, problem: "neither secrets nor configMaps is set", fix: "select Secrets or ConfigMaps by label, or remove objects")
        }
        // One object holds them all, and it is never stored in the clear: Secrets are why it
        // exists, and ConfigMaps often hold what should have been Secrets.
        guard encrypted else {
            throw BackstopAPIError(field: field, problem: "Secrets and ConfigMaps would be stored unencrypted",
                                   fix: "set spec.encryption.keySecret or spec.encryption.passphraseSecret")
        }
        guard let account = serviceAccountName, !account.isEmpty else {
            throw BackstopAPIError(field: field + ".serviceAccountName", problem: "no ServiceAccount is named to read them",
                                   fix: "name one bound to a Role with get and list on the selected kinds in this namespace (k8s/examples/objects-rbac.yaml)")
        }
        if let jobTemplateAccount, jobTemplateAccount != account {
            throw BackstopAPIError(field: field + ".serviceAccountName",
                                   problem: "\"\(account)\" differs from spec.jobTemplate.serviceAccountName \"\(jobTemplateAccount)\"; a backup pod runs as one account",
                                   fix: "name the same account in both, or remove spec.jobTemplate.serviceAccountName")
        }
        return Resolved(selectors: selectors, serviceAccountName: account)
    }
}

/// Kubernetes' label selector (`matchLabels`, `matchExpressions`), as the API's list query
/// takes it: `app=shop,tier in (web,db),!legacy`.
public struct LabelSelector: Codable, Sendable, Equatable {
    public struct Requirement: Codable, Sendable, Equatable {
        public var key: String
        /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
        public var `operator`: String
        public var values: [String]?

        public init(key: String, operator: String, values: [String]? = nil) {
            self.key = key
            self.operator = `operator`
            self.values = values
        }
    }

    public var matchLabels: [String: String]?
    public var matchExpressions: [Requirement]?

    public init(matchLabels: [String: String]? = nil, matchExpressions: [Requirement]? = nil) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// The query form. An empty selector would select every object of the kind: refused, so
    /// that what a backup reads is always a choice someone wrote down.
    public func query(field: String) throws(BackstopAPIError) -> String {
        var clauses: [String] = []
        for (key, value) in (matchLabels ?? [:]).sorted(by: { $0.key < $1.key }) {
            try Self.check(key: key, field: "\(field).matchLabels")
            try Self.check(value: value, field: "\(field).matchLabels.\(key)")
            clauses.append("\(key)=\(value)")
        }
        for (index, requirement) in (matchExpressions ?? []).enumerated() {
            let at = "\(field).matchExpressions[\(index)]"
            try Self.check(key: requirement.key, field: at + ".key")
            let values = requirement.values ?? []
            for value in values { try Self.check(value: value, field: at + ".values") }
            switch requirement.operator {
            case "In", "NotIn":
                guard !values.isEmpty else {
                    throw BackstopAPIError(field: at + ".values", problem: "\(requirement.operator) needs at least one value", fix: "list the values, or use Exists")
                }
                clauses.append("\(requirement.key) \(requirement.operator.lowercased()) (\(values.joined(separator: ",")))")
            case "Exists", "DoesNotExist":
                guard values.isEmpty else {
                    throw BackstopAPIError(field: at + ".values", problem: "\(requirement.operator) takes no values", fix: "remove values, or use In")
                }
                clauses.append(requirement.operator == "Exists" ? requirement.key : "!" + requirement.key)
            default:
                throw BackstopAPIError(field: at + ".operator", problem: "\"\(requirement.operator)\" is not an operator",
                                       fix: "use In, NotIn, Exists or DoesNotExist")
            }
        }
        guard !clauses.isEmpty else {
            throw BackstopAPIError(field: field, problem: "the selector is empty and would take every object of the kind",
                                   fix: "give matchLabels (e.g. backstop.dev/backup: \"true\") or matchExpressions")
        }
        return clauses.joined(separator: ",")
    }

    /// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
    /// characters (alphanumerics, `-`, `_`, `.`, alphanumeric at both ends).
    static func check(key: String, field: String) throws(BackstopAPIError) {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        let name = parts.last.map(String.init) ?? ""
        let prefixOK = parts.count == 1 || (parts.count == 2 && !parts[0].isEmpty && parts[0].count <= 253
            && parts[0].allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") })
        guard prefixOK, !name.isEmpty, isLabelName(name) else {
            throw BackstopAPIError(field: field, problem: "\"\(key)\" is not a label key", fix: "use a name such as app or backstop.dev/backup")
        }
    }

    static func check(value: String, field: String) throws(BackstopAPIError) {
        guard value.isEmpty || isLabelName(value) else {
            throw BackstopAPIError(field: field, problem: "\"\(value)\" is not a label value",
                                   fix: "use at most 63 letters, digits, -, _ or ., starting and ending with a letter or digit")
        }
    }

    private static func isLabelName(_ text: String) -> Bool {
        guard text.count <= 63, let first = text.first, let last = text.last,
              first.isASCII && (first.isLetter || first.isNumber), last.isASCII && (last.isLetter || last.isNumber) else { return false }
        return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }
}
