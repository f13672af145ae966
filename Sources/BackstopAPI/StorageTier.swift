/// A move to a cheaper storage class once a backup is old enough, e.g. `30d:STANDARD_IA`.
/// Only classes that can be read back directly are allowed: a backup that needs a restore
/// request from an archive before it can be read is not a backup a Job can restore.
public struct StorageTier: Sendable, Codable, Equatable, CustomStringConvertible {
    public var after: RetentionDuration
    public var storageClass: String

    /// Classes S3 reads back without a restore request.
    public static let readableClasses: Set<String> = ["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"]
    static let archiveClasses: Set<String> = ["GLACIER", "DEEP_ARCHIVE"]

    public init(after: RetentionDuration, storageClass: String) throws(BackstopAPIError) {
        if Self.archiveClasses.contains(storageClass) {
            throw BackstopAPIError(field: "tiers.storageClass", problem: "\(storageClass) objects must be restored from the archive (hours) before they can be read, so restores and verification would fail",
                                   fix: "use GLACIER_IR (instant retrieval), STANDARD_IA or ONEZONE_IA")
        }
        guard Self.readableClasses.contains(storageClass) else {
            throw BackstopAPIError(field: "tiers.storageClass", problem: "\(storageClass) is not an S3 storage class Backstop can read back",
                                   fix: "use one of \(Self.readableClasses.sorted().joined(separator: ", "))")
        }
        self.after = after
        self.storageClass = storageClass
    }

    /// Parses `30d:STANDARD_IA`.
    public init(parsing text: String) throws(BackstopAPIError) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else {
            throw BackstopAPIError(field: "--tier", problem: "\"\(text)\" is not AGE:CLASS", fix: "write it like 30d:STANDARD_IA")
        }
        try self.init(after: try RetentionDuration(parsing: parts[0], field: "--tier"), storageClass: parts[1])
    }

    public var description: String { "\(after):\(storageClass)" }

    /// The class a backup of `age` seconds belongs in: the last tier it has reached, or `nil`
    /// (stay where it was written).
    public static func target(for age: Double, in tiers: [StorageTier]) -> StorageTier? {
        tiers.sorted { $0.after.seconds < $1.after.seconds }.last { age >= Double($0.after.seconds) }
    }
}
