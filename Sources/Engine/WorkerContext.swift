public import BackstopAPI
public import Logging
public import Storage
internal import Foundation

/// What every worker command needs: where the backups are, how to log, and the clock.
public struct WorkerContext: Sendable {
    public var storage: any ObjectStorage
    public var location: BackupLocation
    public var logger: Logger
    /// `--pg-bin`: the folder with pg_dump and pg_restore; `nil` finds them.
    public var postgresBinDirectory: String?
    /// Wall-clock seconds since 1970; injected so tests control ids and times.
    public var now: @Sendable () -> Double
    /// How often progress lines are printed.
    public var progressInterval: Duration
    /// How long a backup's or a prune's lease lasts unrenewed, and how often it is renewed.
    public var leaseTiming = LeaseTiming.standard

    public struct LeaseTiming: Sendable {
        public var duration: Duration
        public var renewal: Duration

        public init(duration: Duration, renewal: Duration) {
            self.duration = duration
            self.renewal = renewal
        }

        /// A killed holder blocks its environment for two minutes at most.
        public static let standard = LeaseTiming(duration: .seconds(120), renewal: .seconds(30))
    }

    public init(storage: any ObjectStorage, location: BackupLocation, logger: Logger,
                postgresBinDirectory: String? = nil,
                now: @escaping @Sendable () -> Double = WorkerContext.systemTime,
                progressInterval: Duration = .seconds(5)) {
        self.storage = storage
        self.location = location
        self.logger = logger
        self.postgresBinDirectory = postgresBinDirectory
        self.now = now
        self.progressInterval = progressInterval
    }

    public static let systemTime: @Sendable () -> Double = { Date().timeIntervalSince1970 }

    var timestamp: UTCTimestamp { UTCTimestamp(secondsSince1970: Int64(now())) }

    /// The version written into manifests and reports.
    public static let toolVersion = "0.1.0"
}
