internal import BackstopAPI
internal import Foundation
internal import KubeObjects

/// The body a webhook receives for one owed notification, in the target's format. Pure (the
/// golden tests pin every event in every format); holds no secret: the status carries
/// nothing more than this.
enum NotificationPayload {
    struct Subject {
        let namespace: String
        let policy: String
    }

    static func body(_ notification: NotificationStatus.Pending, format: NotificationFormat, subject: Subject) -> [UInt8] {
        let value: JSONValue
        switch format {
        case .generic: value = generic(notification, subject)
        case .slack: value = slack(notification, subject)
        case .msteams: value = teams(notification, subject)
        }
        return value.encodedBytes()
    }

    /// `[FAILED] BackupFailed: shop/orders production`
    static func title(_ notification: NotificationStatus.Pending, _ subject: Subject) -> String {
        "[\(notification.event.isProblem ? "FAILED" : "RECOVERED")] \(notification.event.rawValue): \(subject.namespace)/\(subject.policy) \(notification.environment)"
    }

    /// Backstop's own schema, version `backstop.dev/notification/v1` (docs/notifications.md).
    static func generic(_ notification: NotificationStatus.Pending, _ subject: Subject) -> JSONValue {
        [
            "schema": "backstop.dev/notification/v1",
            "event": .string(notification.event.rawValue),
            "severity": notification.event.isProblem ? "critical" : "resolved",
            "identity": .string(notification.identity),
            "namespace": .string(subject.namespace),
            "policy": .string(subject.policy),
            "environment": .string(notification.environment),
            "message": .string(notification.message),
            "occurredAt": .string(notification.occurredAt.description),
        ]
    }

    /// A Slack incoming webhook: `text` for notifications and old clients, `blocks` to show.
    static func slack(_ notification: NotificationStatus.Pending, _ subject: Subject) -> JSONValue {
        let marker = notification.event.isProblem ? ":red_circle:" : ":large_green_circle:"
        return [
            "text": .string(escapeSlack("\(title(notification, subject)): \(notification.message)")),
            "blocks": [
                ["type": "header", "text": ["type": "plain_text", "text": .string("\(marker) \(notification.event.rawValue): \(subject.policy) \(notification.environment)")]],
                ["type": "section", "text": ["type": "mrkdwn", "text": .string(escapeSlack(notification.message))]],
                ["type": "context", "elements": [["type": "mrkdwn", "text": .string(
                    escapeSlack("namespace \(subject.namespace) · policy \(subject.policy) · \(notification.occurredAt) · \(notification.identity)"))]]],
            ],
        ]
    }

    /// Slack's mrkdwn reads `&`, `<` and `>` as markup.
    static func escapeSlack(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// A Teams Workflows webhook ("When a Teams webhook request is received"): a message
    /// with one Adaptive Card attachment (the retired connectors' MessageCard is not read).
    static func teams(_ notification: NotificationStatus.Pending, _ subject: Subject) -> JSONValue {
        let card: JSONValue = [
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                ["type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
                 "color": notification.event.isProblem ? "Attention" : "Good", "text": .string(title(notification, subject))],
                ["type": "TextBlock", "wrap": true, "text": .string(notification.message)],
                ["type": "FactSet", "facts": [
                    ["title": "Namespace", "value": .string(subject.namespace)],
                    ["title": "Policy", "value": .string(subject.policy)],
                    ["title": "Environment", "value": .string(notification.environment)],
                    ["title": "When", "value": .string(notification.occurredAt.description)],
                    ["title": "Identity", "value": .string(notification.identity)],
                ]],
            ],
        ]
        return ["type": "message", "attachments": [["contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": .null, "content": card]]]
    }
}
