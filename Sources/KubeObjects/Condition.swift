/// `metav1.Condition`: the state of one aspect of an object. Type and reason are open sets
/// (typed constants that any string still decodes to, so a condition a newer controller wrote
/// never breaks an older one's reading; coded as their plain string, the standard library's
/// way for string-backed `RawRepresentable`s); status and time are typed.
public struct Condition: Codable, Sendable, Hashable {
    public enum Status: String, Codable, Sendable {
        case `true` = "True"
        case `false` = "False"
        case unknown = "Unknown"

        public init(_ value: Bool) { self = value ? .true : .false }
    }

    public struct ConditionType: RawRepresentable, Codable, Sendable, Hashable, ExpressibleByStringLiteral {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { rawValue = value }
    }

    public struct Reason: RawRepresentable, Codable, Sendable, Hashable, ExpressibleByStringLiteral {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { rawValue = value }
    }

    public var type: ConditionType
    public var status: Status
    public var reason: Reason
    public var message: String
    public var lastTransitionTime: KubeTimestamp
    public var observedGeneration: Int?

    public init(type: ConditionType, status: Status, reason: Reason, message: String, lastTransitionTime: KubeTimestamp,
                observedGeneration: Int?) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
        self.observedGeneration = observedGeneration
    }
}

extension Array where Element == Condition {
    public subscript(type: Condition.ConditionType) -> Condition? {
        first { $0.type == type }
    }

    /// Sets a condition; its transition time moves only when its status changes.
    public mutating func set(_ condition: Condition) {
        guard let index = firstIndex(where: { $0.type == condition.type }) else {
            append(condition)
            return
        }
        var updated = condition
        if self[index].status == condition.status { updated.lastTransitionTime = self[index].lastTransitionTime }
        self[index] = updated
    }
}
