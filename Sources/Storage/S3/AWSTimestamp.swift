internal import Foundation

extension Date {
    /// A time as AWS writes it: `2026-11-22T01:00:00Z` (STS), `2026-11-22T01:00:00.000Z` (S3).
    init?(awsTimestamp text: String) {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) {
            self = date
            return
        }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = formatter.date(from: text) else { return nil }
        self = date
    }
}
