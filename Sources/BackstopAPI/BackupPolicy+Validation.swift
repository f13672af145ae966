internal import Foundation
internal import KubeObjects

extension BackupPolicy {
    public static let defaultSchedule = "0 2 * * *"
    public static let sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
    public static let concurrencyPolicies = ["Allow", "Forbid", "Replace"]
    public static let maximumEnvironments = 16

    /// What one environment runs with, every default applied.
    public struct ResolvedEnvironment: Sendable, Equatable {
        public var name: String
        public var schedule: String
        public var timeZone: String
        public var suspend: Bool
        public var database: Database
        public var retention: RetentionPolicy?
        public var tiers: [StorageTier]
        public var rpo: FixedDuration?
        public var rto: FixedDuration?
        public var drill: ResolvedDrill?
        public var method: BackupMethod = .logical
        /// Whether the cluster archives its WAL into this environment.
        public var walArchiving = false
        /// The Secrets and ConfigMaps its backups store beside the dump.
        public var objects: NamespaceObjects.Resolved?
    }

    public struct ResolvedDrill: Sendable, Equatable {
        public enum Scratch: Sendable, Equatable {
            /// A named server, every connection default applied.
            case server(Database)
            /// A sidecar of this image, or `postgres:<the backup's major version>`.
            case sidecar(image: String?)
        }
        public var schedule: String
        public var suspend: Bool
        public var scratch: Scratch
    }

    /// The policy's environments with defaults applied, after `validate()` passed.
    public func resolvedEnvironments() throws(BackstopAPIError) -> [ResolvedEnvironment] {
        try validate()
        let base = Database(port: 5432, sslMode: "require").overridden(by: spec.database)
        var resolved: [ResolvedEnvironment] = []
        for (index, environment) in spec.environments.enumerated() {
            let field = "spec.environments[\(index)]"
            resolved.append(ResolvedEnvironment(
                name: environment.name,
                schedule: environment.schedule ?? spec.schedule ?? Self.defaultSchedule,
                timeZone: spec.timeZone ?? "Etc/UTC",
                suspend: environment.suspend ?? spec.suspend ?? false,
                database: base.overridden(by: environment.database),
                retention: try environment.retention.map { retention throws(BackstopAPIError) in
                    try Self.retentionPolicy(retention, timeZone: spec.timeZone ?? "Etc/UTC", field: field + ".retention")
                },
                tiers: try Self.storageTiers(environment.retention?.tiers ?? [], field: field + ".retention.tiers"),
                rpo: try environment.objectives?.rpo.map { rpo throws(BackstopAPIError) in try FixedDuration(parsing: rpo, field: field + ".objectives.rpo") },
                rto: try environment.objectives?.rto.map { rto throws(BackstopAPIError) in try FixedDuration(parsing: rto, field: field + ".objectives.rto") },
                drill: environment.drill.map { drill in
                    ResolvedDrill(schedule: drill.schedule, suspend: drill.suspend ?? environment.suspend ?? spec.suspend ?? false,
                                  scratch: drill.scratch?.database.map { .server(Database(port: 5432, name: "postgres", sslMode: "require").overridden(by: $0)) }
                                    ?? .sidecar(image: drill.scratch?.image))
                },
                method: environment.method ?? .logical,
                walArchiving: environment.walArchiving?.enabled ?? false,
                objects: try resolvedObjects(environment, field: field)))
        }
        return resolved
    }

    /// The first problem, naming the field: what `Ready=False` says for a policy the schema let
    /// through but that is still wrong.
    public func validate() throws(BackstopAPIError) {
        do { _ = try BackupLocation(namespace: metadata.namespace ?? "default", policy: metadata.name, environment: "x") }
        catch { throw BackstopAPIError(field: "metadata.name", problem: error.problem, fix: error.fix) }
        if let schedule = spec.schedule { try Self.checkSchedule(schedule, field: "spec.schedule") }
        if let zone = spec.timeZone, TimeZone(identifier: zone) == nil {
            throw BackstopAPIError(field: "spec.timeZone", problem: "\"\(zone)\" is not a time zone", fix: "use an IANA name such as Etc/UTC or Europe/Berlin")
        }
        if let policy = spec.concurrencyPolicy, !Self.concurrencyPolicies.contains(policy) {
            throw BackstopAPIError(field: "spec.concurrencyPolicy", problem: "\"\(policy)\" is not one of \(Self.concurrencyPolicies.joined(separator: ", "))", fix: "use Forbid (the default) so two backups of one environment never overlap")
        }
        try checkStorage()
        if let compression = spec.compression, let level = compression.level {
            let algorithm = compression.algorithm ?? .zstd
            guard algorithm.levels.contains(level) else {
                throw BackstopAPIError(field: "spec.compression.level", problem: "\(level) is outside \(algorithm.rawValue)'s range \(algorithm.levels.lowerBound)-\(algorithm.levels.upperBound)", fix: "pick a level in it, or leave it out for the default")
            }
        }
        if spec.encryption?.keySecret != nil && spec.encryption?.passphraseSecret != nil {
            throw BackstopAPIError(field: "spec.encryption", problem: "both keySecret and passphraseSecret are set", fix: "keep one of them")
        }
        guard !spec.environments.isEmpty else {
            throw BackstopAPIError(field: "spec.environments", problem: "no environment is listed", fix: "add at least one, e.g. {name: production, retention: {keep: {daily: 7}}}")
        }
        guard spec.environments.count <= Self.maximumEnvironments else {
            throw BackstopAPIError(field: "spec.environments", problem: "\(spec.environments.count) environments", fix: "use at most \(Self.maximumEnvironments), or split the policy")
        }
        try checkNotifications()
        var seen: Set<String> = []
        let base = Database(port: 5432, sslMode: "require").overridden(by: spec.database)
        for (index, environment) in spec.environments.enumerated() {
            let field = "spec.environments[\(index)]"
            do { _ = try BackupLocation(namespace: "x", policy: "x", environment: environment.name) }
            catch { throw BackstopAPIError(field: field + ".name", problem: error.problem, fix: error.fix) }
            guard seen.insert(environment.name).inserted else {
                throw BackstopAPIError(field: field + ".name", problem: "\"\(environment.name)\" is listed twice", fix: "give every environment its own name")
            }
            if let schedule = environment.schedule { try Self.checkSchedule(schedule, field: field + ".schedule") }
            try Self.checkDatabase(base.overridden(by: environment.database), field: field + ".database")
            if let retention = environment.retention {
                _ = try Self.retentionPolicy(retention, timeZone: spec.timeZone ?? "Etc/UTC", field: field + ".retention")
                _ = try Self.storageTiers(retention.tiers ?? [], field: field + ".retention.tiers")
            }
            if let rpo = environment.objectives?.rpo { _ = try FixedDuration(parsing: rpo, field: field + ".objectives.rpo") }
            if let rto = environment.objectives?.rto { _ = try FixedDuration(parsing: rto, field: field + ".objectives.rto") }
            if let drill = environment.drill { try Self.checkDrill(drill, field: field + ".drill") }
            _ = try resolvedObjects(environment, field: field)
            if environment.method == .physical {
                guard environment.walArchiving?.enabled == true else {
                    throw BackstopAPIError(field: field + ".method", problem: "physical backups without WAL archiving cannot be recovered",
                                           fix: "set walArchiving: {enabled: true} and archive_command = 'backstop wal-push %p' in the PostgreSQL pod (see k8s/examples/postgres-archiving.yaml), or use method: logical")
                }
                guard environment.drill == nil else {
                    throw BackstopAPIError(field: field + ".drill", problem: "restore drills restore logical dumps, and this environment takes physical base backups",
                                           fix: "remove drill here, or add a logical environment with the drill")
                }
            }
        }
    }

    /// The environment's own `objects`, else the policy's; checked against encryption and the
    /// job template's account.
    private func resolvedObjects(_ environment: Environment, field: String) throws(BackstopAPIError) -> NamespaceObjects.Resolved? {
        let (objects, at) = environment.objects.map { ($0, field + ".objects") } ?? (spec.objects, "spec.objects")
        guard let objects else { return nil }
        let encrypted = spec.encryption?.keySecret != nil || spec.encryption?.passphraseSecret != nil
        return try objects.resolved(field: at, encrypted: encrypted, jobTemplateAccount: spec.jobTemplate?.serviceAccountName)
    }

    private func checkNotifications() throws(BackstopAPIError) {
        var names: Set<String> = []
        for (index, notification) in (spec.notifications ?? []).enumerated() {
            let field = "spec.notifications[\(index)]"
            guard !notification.name.isEmpty, notification.name.count <= 63,
                  notification.name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) else {
                throw BackstopAPIError(field: field + ".name", problem: "\"\(notification.name)\" is not a short lowercase name", fix: "use letters, digits and -, e.g. oncall-slack")
            }
            guard names.insert(notification.name).inserted else {
                throw BackstopAPIError(field: field + ".name", problem: "\"\(notification.name)\" is listed twice", fix: "give every target its own name")
            }
            guard !notification.webhook.secretName.isEmpty else {
                throw BackstopAPIError(field: field + ".webhook.secretName", problem: "no Secret is named",
                                       fix: "name a Secret in the controller's namespace whose key url holds the webhook's URL")
            }
            if let events = notification.events, events.isEmpty {
                throw BackstopAPIError(field: field + ".events", problem: "no event is listed", fix: "list events, or leave events out for all of them")
            }
        }
    }

    private func checkStorage() throws(BackstopAPIError) {
        switch (spec.storage.s3, spec.storage.file) {
        case (nil, nil):
            throw BackstopAPIError(field: "spec.storage", problem: "no storage is set", fix: "set spec.storage.s3 (bucket, region …) or spec.storage.file (a mounted volume)")
        case (.some, .some):
            throw BackstopAPIError(field: "spec.storage", problem: "both s3 and file are set", fix: "keep one of them")
        case (let s3?, nil):
            do { _ = try S3LocationCheck.check(bucket: s3.bucket) }
            catch { throw BackstopAPIError(field: "spec.storage.s3.bucket", problem: error.problem, fix: error.fix) }
            if let sse = s3.serverSideEncryption, !["AES256", "aws:kms"].contains(sse) {
                throw BackstopAPIError(field: "spec.storage.s3.serverSideEncryption", problem: "\"\(sse)\" is not AES256 or aws:kms", fix: "use AES256, aws:kms, or leave it out")
            }
            if let storageClass = s3.storageClass, !storageClass.isEmpty {
                try StorageTier.checkReadable(storageClass, field: "spec.storage.s3.storageClass")
            }
            if let endpoint = s3.endpoint, !endpoint.isEmpty, !endpoint.hasPrefix("https://"), !endpoint.hasPrefix("http://") {
                throw BackstopAPIError(field: "spec.storage.s3.endpoint", problem: "\"\(endpoint)\" is not a URL", fix: "write it like https://minio.storage.svc:9000")
            }
        case (nil, let file?):
            guard file.path.hasPrefix("/") else {
                throw BackstopAPIError(field: "spec.storage.file.path", problem: "\"\(file.path)\" is not absolute", fix: "use the volume's mount path, e.g. /backups")
            }
        }
    }

    static func checkDatabase(_ database: Database, field: String) throws(BackstopAPIError) {
        guard let host = database.host, !host.isEmpty else {
            throw BackstopAPIError(field: field + ".host", problem: "no database host", fix: "set spec.database.host, or the environment's database.host")
        }
        guard let name = database.name, !name.isEmpty else {
            throw BackstopAPIError(field: field + ".name", problem: "no database name", fix: "set spec.database.name, or the environment's database.name")
        }
        guard let secret = database.credentialsSecret, !secret.isEmpty else {
            throw BackstopAPIError(field: field + ".credentialsSecret", problem: "no credentials Secret", fix: "name a Secret with keys username and password")
        }
        if let port = database.port, !(1...65_535).contains(port) {
            throw BackstopAPIError(field: field + ".port", problem: "\(port) is not a port", fix: "use 1-65535 (PostgreSQL's default is 5432)")
        }
        if let mode = database.sslMode, !sslModes.contains(mode) {
            throw BackstopAPIError(field: field + ".sslMode", problem: "\"\(mode)\" is not a libpq sslmode", fix: "use one of \(sslModes.joined(separator: ", "))")
        }
    }

    static func checkDrill(_ drill: Drill, field: String) throws(BackstopAPIError) {
        try checkSchedule(drill.schedule, field: field + ".schedule")
        guard let scratch = drill.scratch else { return }
        if scratch.database != nil && scratch.image != nil {
            throw BackstopAPIError(field: field + ".scratch", problem: "both database and image are set",
                                   fix: "name a scratch server (database) or a sidecar image, not both")
        }
        if let database = scratch.database {
            let resolved = Database(port: 5432, name: "postgres", sslMode: "require").overridden(by: database)
            try checkDatabase(resolved, field: field + ".scratch.database")
        }
    }

    static func retentionPolicy(_ retention: Retention, timeZone: String, field: String) throws(BackstopAPIError) -> RetentionPolicy {
        let keep = retention.keep
        // The schema wants every count at least 1 (omit a rule rather than write 0): restic
        // reads 0 as "not set", and a policy of zeros reads as keeping something it does not.
        for (name, value) in [("last", keep.last), ("hourly", keep.hourly), ("daily", keep.daily), ("weekly", keep.weekly),
                              ("monthly", keep.monthly), ("yearly", keep.yearly)] {
            if let value, value < 1 {
                throw BackstopAPIError(field: "\(field).keep.\(name)", problem: "\(value) keeps nothing (restic reads 0 as no rule)",
                                       fix: "use 1 or more, or leave the rule out")
            }
        }
        let within = try keep.within.map { within throws(BackstopAPIError) in try CalendarDuration(parsing: within, field: field + ".keep.within") }
        if let within, within.isZero {
            throw BackstopAPIError(field: field + ".keep.within", problem: "\"\(keep.within ?? "")\" is a zero window, which keeps nothing",
                                   fix: "give a window such as 30d or 6mo, or leave the rule out")
        }
        let policy = RetentionPolicy(
            keep: .init(within: within, last: keep.last, hourly: keep.hourly, daily: keep.daily, weekly: keep.weekly, monthly: keep.monthly, yearly: keep.yearly),
            minAge: try retention.minAge.map { age throws(BackstopAPIError) in try FixedDuration(parsing: age, field: field + ".minAge") } ?? RetentionPolicy.defaultMinAge,
            timeZone: timeZone)
        do { try policy.validate() } catch {
            throw BackstopAPIError(field: field + error.field.dropFirst("retention".count), problem: error.problem, fix: error.fix)
        }
        return policy
    }

    static func storageTiers(_ tiers: [Retention.Tier], field: String) throws(BackstopAPIError) -> [StorageTier] {
        var result: [StorageTier] = []
        for (index, tier) in tiers.enumerated() {
            let after = try CalendarDuration(parsing: tier.after, field: "\(field)[\(index)].after")
            do { result.append(try StorageTier(after: after, storageClass: tier.storageClass)) }
            catch { throw BackstopAPIError(field: "\(field)[\(index)].\(error.field.split(separator: ".").last ?? "storageClass")", problem: error.problem, fix: error.fix) }
        }
        return result
    }

    /// Five cron fields (minute hour day-of-month month day-of-week), or a macro.
    static func checkSchedule(_ schedule: String, field: String) throws(BackstopAPIError) {
        let macros = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]
        if macros.contains(schedule) { return }
        let parts = schedule.split(separator: " ", omittingEmptySubsequences: true)
        let ranges = [0...59, 0...23, 1...31, 1...12, 0...7]
        let names = [[], [], [], ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]]
        guard parts.count == 5 else {
            throw BackstopAPIError(field: field, problem: "\"\(schedule)\" has \(parts.count) fields", fix: "write five cron fields (minute hour day month weekday), e.g. \"0 2 * * *\", or @daily")
        }
        for (index, part) in parts.enumerated() {
            for item in part.split(separator: ",", omittingEmptySubsequences: false) {
                let stepParts = item.split(separator: "/", omittingEmptySubsequences: false)
                guard stepParts.count <= 2, stepParts.count < 2 || (Int(stepParts[1]).map { $0 > 0 } ?? false) else {
                    throw BackstopAPIError(field: field, problem: "\"\(item)\" in \"\(schedule)\" has a bad step", fix: "write a step as */15 or 0-30/5")
                }
                let body = stepParts[0]
                if body == "*" { continue }
                for bound in body.split(separator: "-", omittingEmptySubsequences: false) {
                    let value = Int(bound) ?? names[index].firstIndex(of: bound.lowercased()).map { $0 + (index == 3 ? 1 : 0) }
                    guard let value, ranges[index].contains(value) else {
                        throw BackstopAPIError(field: field, problem: "\"\(bound)\" is out of range in field \(index + 1) of \"\(schedule)\"", fix: "field \(index + 1) takes \(ranges[index].lowerBound)-\(ranges[index].upperBound)")
                    }
                }
            }
        }
    }
}

/// The bucket-name rule of `s3://` locations, shared with the CLI's parsing.
enum S3LocationCheck {
    static func check(bucket: String) throws(BackstopAPIError) -> String {
        guard bucket.count >= 3, bucket.count <= 63,
              bucket.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "." }) else {
            throw BackstopAPIError(field: "bucket", problem: "\"\(bucket)\" is not a valid bucket name", fix: "use 3-63 lower-case letters, digits, '-' and '.'")
        }
        return bucket
    }
}
