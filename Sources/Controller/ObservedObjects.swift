public import BackstopAPI
internal import Foundation
public import KubeClient
public import KubeRuntime
internal import Workloads

// What the controller's caches hold: typed and trimmed to what a reconcile reads, so a
// thousand policies with three CronJobs each stay small in memory (no managedFields, no
// untyped JSON trees) and are decoded once, straight from the watch.

/// A BackupPolicy as watched. A policy the API server accepted but that does not decode
/// (a schema older than this controller, a hand-made CRD) is still cached, with the reason,
/// so its status can say what is wrong instead of the whole watch failing.
///
/// The policy is kept as compact JSON and decoded again for each reconcile: the typed value,
/// with its many optional fields laid out inline, is about 5 KiB against 2 KiB of JSON, and
/// a reconcile is rare next to the time a policy sits in the cache.
public struct ObservedPolicy: KubeObject, Equatable {
    public var metadata: ObjectMeta
    private let encoded: Data?
    /// Why `policy` is nil: the field and what was expected there.
    public let decodingError: String?
    /// The status of a policy that does not decode, when that part still does (its other
    /// conditions and history are kept while the spec is wrong).
    let statusOfUndecodable: BackupPolicy.Status?

    /// The policy, typed; nil when it does not decode (see `decodingError`).
    public var policy: BackupPolicy? {
        encoded.flatMap { try? JSONDecoder().decode(BackupPolicy.self, from: $0) }
    }

    private enum CodingKeys: String, CodingKey { case metadata, status }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        metadata = try container.decode(ObjectMeta.self, forKey: .metadata)
        do {
            encoded = try JSONEncoder().encode(try BackupPolicy(from: decoder))
            decodingError = nil
            statusOfUndecodable = nil
        } catch {
            encoded = nil
            decodingError = (error as? DecodingError).map(Self.describe) ?? "\(error)"
            statusOfUndecodable = try? container.decodeIfPresent(BackupPolicy.Status.self, forKey: .status)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        if let policy {
            try policy.encode(to: encoder)
        } else {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(metadata, forKey: .metadata)
        }
    }

    /// `spec.environments[0].retention.keep.daily: expected a number`.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.reduce(into: "") { text, key in
                if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
            }
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(expected(type))"
        case .valueNotFound(_, let context):
            return "\(path(context.codingPath)): a value is required"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): required field is missing"
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func expected(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default: String(describing: type).hasPrefix("Array") ? "a list" : "an object"
        }
    }
}

/// A CronJob the controller made: its metadata and a hash of its spec read into the builder's
/// own types (nil when it no longer reads as one: hand-edited beyond recognition, so drift).
/// The hash, not the spec: three thousand CronJobs' pod templates would be most of the
/// controller's memory, and a reconcile only needs to know whether one is still as built.
public struct ObservedCronJob: KubeObject {
    public var metadata: ObjectMeta
    /// `CronJob.Spec.hashValue`: comparable only within this process (Swift seeds hashes
    /// per process), which is all the cache lives for.
    public let specHash: Int?

    private enum CodingKeys: String, CodingKey { case metadata, spec }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        metadata = try container.decode(ObjectMeta.self, forKey: .metadata).trimmedForCache()
        specHash = (try? container.decode(CronJob.Spec.self, forKey: .spec))?.hashValue
    }

    /// Only the metadata: the spec is not kept.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(metadata, forKey: .metadata)
    }
}

/// A Job the controller's CronJobs (or run-now) started: only how it ended.
public struct ObservedJob: KubeObject {
    public struct Status: Codable, Sendable {
        public struct Condition: Codable, Sendable {
            public var type: String
            public var status: String
            public var lastTransitionTime: String?
            public var message: String?
        }
        public var conditions: [Condition]?
        public var completionTime: String?
    }

    public var metadata: ObjectMeta
    public var status: Status?

    private enum CodingKeys: String, CodingKey { case metadata, status }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        metadata = try container.decode(ObjectMeta.self, forKey: .metadata).trimmedForCache()
        status = try container.decodeIfPresent(Status.self, forKey: .status)
    }

    /// The Complete or Failed condition, once the Job has one.
    var finished: Status.Condition? {
        status?.conditions?.first { ($0.type == "Complete" || $0.type == "Failed") && $0.status == "True" }
    }
}

extension ObjectMeta {
    /// Without what a reconcile of owned objects never reads (uid, times, generation,
    /// finalizers): kept for thousands of objects.
    func trimmedForCache() -> ObjectMeta {
        var trimmed = ObjectMeta(name: name, namespace: namespace, labels: labels)
        trimmed.resourceVersion = resourceVersion
        trimmed.annotations = annotations
        trimmed.ownerReferences = ownerReferences
        return trimmed
    }
}

/// The objects the controller made, as its watches last saw them, grouped by the key
/// (`namespace/policy`) of the policy that owns them.
public struct OwnedObjects: Sendable {
    public let cronJobs = ObjectCache<ObservedCronJob>(indexedBy: { Self.ownerKey(of: $0.metadata) })
    public let jobs = ObjectCache<ObservedJob>(indexedBy: { Self.ownerKey(of: $0.metadata) })

    public init() {}

    /// The owning policy's work-queue key, from the label the builder sets.
    public static func ownerKey(of metadata: ObjectMeta) -> String? {
        guard let policy = metadata.labels?[CronJobBuilder.policyLabel], let namespace = metadata.namespace else { return nil }
        return "\(namespace)/\(policy)"
    }
}
