public import KubeObjects

/// The release a test server answers as: what `/version` says and which fields it serves.
/// A v1.24 server (the recordings') has no CronJob `spec.timeZone` (the `CronJobTimeZone`
/// gate is alpha and off there): it drops the field on create and update and refuses a
/// server-side apply that carries it. 1.25 and later keep it.
public struct KubernetesVersion: Sendable, Hashable {
    public let minor: Int

    public init(minor: Int) { self.minor = minor }

    public static let v1_24 = KubernetesVersion(minor: 24)
    public static let v1_32 = KubernetesVersion(minor: 32)

    public var servesCronJobTimeZone: Bool { minor >= 25 }

    /// The `/version` document (08a's fields; the build details are this server's).
    public var document: JSONValue {
        ["major": "1", "minor": .string("\(minor)"), "gitVersion": .string("v1.\(minor).0"), "gitCommit": "", "gitTreeState": "clean",
         "buildDate": "2026-12-01T00:00:00Z", "goVersion": "go1.22", "compiler": "gc", "platform": "linux/amd64"]
    }
}
