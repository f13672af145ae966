public import Foundation

/// A move to a cheaper storage class once a backup is old enough, e.g. `30d:STANDARD_IA` or
/// `6mo:GLACIER_IR` (ages are retention windows: calendar months and years as restic counts
/// them). Only classes that can be read back directly are allowed: a backup that needs a
/// restore request from an archive before it can be read is not a backup a Job can restore.
public struct StorageTier: Sendable, Codable, Equatable, CustomStringConvertible {
    public var after: CalendarDuration
    public var storageClass: String

    /// Classes S3 reads back without a restore request.
    public static let readableClasses: Set<String> = ["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"]
    static let archiveClasses: Set<String> = ["GLACIER", "DEEP_ARCHIVE"]

    public init(after: CalendarDuration, storageClass: String) throws(BackstopAPIError) {
        guard !after.isZero else {
            throw BackstopAPIError(field: "tiers.after", problem: "a zero age would move every backup as it is written",
                                   fix: "give the age at which backups move, e.g. 30d or 6mo")
        }
        try Self.checkReadable(storageClass, field: "tiers.storageClass")
        self.after = after
        self.storageClass = storageClass
    }

    /// Refuses storage classes a backup could not be read back from at once (archives) and
    /// names S3 does not know, before anything is written: S3 would refuse an unknown class
    /// only after the whole dump was uploaded.
    public static func checkReadable(_ storageClass: String, field: String) throws(BackstopAPIError) {
        if archiveClasses.contains(storageClass) {
            throw BackstopAPIError(field: field, problem: "\(storageClass) objects must be restored from the archive (hours) before they can be read, so restores and verification would fail",
                                   fix: "use GLACIER_IR (instant retrieval), STANDARD_IA or ONEZONE_IA")
        }
        guard readableClasses.contains(storageClass) else {
            throw BackstopAPIError(field: field, problem: "\(storageClass) is not an S3 storage class Backstop can read back",
                                   fix: "use one of \(readableClasses.sorted().joined(separator: ", "))")
        }
    }

    /// Parses `30d:STANDARD_IA`; `option` names where the text came from in errors.
    public init(parsing text: String, option: String = "--tier") throws(BackstopAPIError) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else {
            throw BackstopAPIError(field: option, problem: "\"\(text)\" is not AGE:CLASS", fix: "write it like 30d:STANDARD_IA or 6mo:GLACIER_IR")
        }
        do {
            try self.init(after: try CalendarDuration(parsing: parts[0], field: option), storageClass: parts[1])
        } catch {
            throw BackstopAPIError(field: option, problem: error.problem, fix: error.fix)
        }
    }

    public var description: String { "\(after):\(storageClass)" }

    /// The class a backup taken at `time` belongs in at `now`: the last tier whose age it has
    /// reached, or `nil` (stay where it was written). Ages are counted in `calendar`.
    public static func target(for time: Date, now: Date, in tiers: [StorageTier], calendar: Calendar) -> StorageTier? {
        tiers.map { (tier: $0, reachedAt: $0.after.before(now, in: calendar)) }
            .filter { time <= $0.reachedAt }
            .min { $0.reachedAt < $1.reachedAt }?.tier
    }
}
