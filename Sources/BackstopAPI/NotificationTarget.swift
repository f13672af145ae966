public import KubeObjects

/// A webhook the controller tells about failures and breaches of a policy's environments.
/// The URL carries a token, so it lives in a Secret of the controller's own namespace, made by
/// the platform's admin; the policy only names it.
public struct NotificationTarget: Codable, Sendable, Equatable {
    public struct Webhook: Codable, Sendable, Equatable {
        public var secretName: String
        /// The Secret's key that holds the URL; `url` when left out.
        public var key: String?

        public init(secretName: String, key: String? = nil) {
            self.secretName = secretName
            self.key = key
        }
    }

    /// How the target is named in the status, the Events and the metric.
    public var name: String
    public var webhook: Webhook
    public var format: NotificationFormat?
    /// Which events; every one when left out.
    public var events: [NotificationEvent]?

    public init(name: String, webhook: Webhook, format: NotificationFormat? = nil, events: [NotificationEvent]? = nil) {
        self.name = name
        self.webhook = webhook
        self.format = format
        self.events = events
    }

    public var wantedEvents: Set<NotificationEvent> { Set(events ?? NotificationEvent.allCases) }
}

public enum NotificationFormat: String, Codable, Sendable, CaseIterable {
    /// Backstop's own JSON (docs/notifications.md).
    case generic
    /// A Slack incoming webhook's `{text, blocks}`.
    case slack
    /// A Microsoft Teams Workflows webhook: a message carrying an Adaptive Card.
    case msteams
}

public enum NotificationEvent: String, Codable, Sendable, CaseIterable, Comparable {
    case backupFailed = "BackupFailed"
    /// The first success after a failure.
    case backupRecovered = "BackupRecovered"
    case rpoBreached = "RPOBreached"
    case drillFailed = "DrillFailed"
    case rtoBreached = "RTOBreached"
    /// WAL archiving failing or lagging (the `ContinuousArchiving` condition going False).
    case archivingStalled = "ArchivingStalled"

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Whether it tells of something broken (red) or mended (green).
    public var isProblem: Bool { self != .backupRecovered }
}

/// What the controller owes and has delivered, kept in the policy's status so a restarted or
/// new leader neither loses nor repeats a notification.
public struct NotificationStatus: Codable, Sendable, Hashable {
    /// One event for one target, not yet delivered.
    public struct Pending: Codable, Sendable, Hashable {
        public var target: String
        /// `type/environment/cause`: the same breach or Job is one notification.
        public var identity: String
        public var event: NotificationEvent
        public var environment: String
        public var message: String
        public var occurredAt: KubeTimestamp
        public var attempts: Int
        /// Not before this time (the backoff after a failed attempt).
        public var nextAttemptAt: KubeTimestamp?
        public var lastError: String?

        public init(target: String, identity: String, event: NotificationEvent, environment: String, message: String,
                    occurredAt: KubeTimestamp, attempts: Int = 0, nextAttemptAt: KubeTimestamp? = nil, lastError: String? = nil) {
            self.target = target
            self.identity = identity
            self.event = event
            self.environment = environment
            self.message = message
            self.occurredAt = occurredAt
            self.attempts = attempts
            self.nextAttemptAt = nextAttemptAt
            self.lastError = lastError
        }
    }

    public struct Failure: Codable, Sendable, Hashable {
        public var target: String
        public var identity: String
        public var time: KubeTimestamp
        public var message: String

        public init(target: String, identity: String, time: KubeTimestamp, message: String) {
            self.target = target
            self.identity = identity
            self.time = time
            self.message = message
        }
    }

    public var pending: [Pending]?
    /// `target identity` of the newest deliveries (at most `deliveredLimit`): what is here is
    /// never sent again.
    public var delivered: [String]?
    /// `target identity` of the newest notifications given up on (after `maximumAttempts`):
    /// not owed again.
    public var abandoned: [String]?
    /// Notifications given up on, and the last one.
    public var failed: Int?
    public var lastFailure: Failure?

    public init() {}

    public static let deliveredLimit = 100
    public static let maximumAttempts = 8
}
