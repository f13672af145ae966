public import BackstopAPI
internal import Foundation
public import KubeClient
public import KubeObjects
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
        metadata.managedFields = nil
        do {
            var policy = try BackupPolicy(from: decoder)
            // Who applied which field is the server's business, and can be most of the object.
            policy.metadata.managedFields = nil
            encoded = try JSONEncoder().encode(policy)
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

/// A CronJob as the controller's cache keeps it: trimmed metadata, the desired-state hash
/// its annotation carries, and a hash of the fields Backstop's own apply owns. Nothing of the
/// spec: the API server fills defaults in, rewrites quantities and drops fields it does not
/// serve, so the spec read back never equals the one applied, and three thousand pod
/// templates would be most of the controller's memory.
public struct ObservedCronJob: KubeObject {
    public var metadata: ObjectMeta
    /// `backstop.dev/spec-hash`: what the builder wanted when it was last applied.
    public let specHash: String?
    /// `FieldSet.stableHash` of the fields the `backstop` manager's Apply entry owns; nil
    /// when it owns none (made or taken over by someone else). A hand edit of a field
    /// Backstop sets moves that field to the editor's entry, and changes this.
    public let appliedFieldsHash: UInt64?

    private enum CodingKeys: String, CodingKey { case metadata }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let metadata = try container.decode(ObjectMeta.self, forKey: .metadata)
        self.metadata = metadata.trimmedForCache()
        specHash = metadata.annotations?[CronJobBuilder.specHashAnnotation]
        appliedFieldsHash = Self.appliedFields(in: metadata).map(\.stableHash)
    }

    /// Only the metadata: the rest is not kept.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(metadata, forKey: .metadata)
    }

    /// The fields `backstop`'s server-side apply owns, from managedFields.
    static func appliedFields(in metadata: ObjectMeta) -> FieldSet? {
        metadata.managedFields?.first { $0.manager == PolicyReconciler.fieldManager && $0.operation == "Apply" && $0.subresource == nil }
            .map { FieldSet(fieldsV1: $0.fieldsV1 ?? .object([:])) }
    }

    /// Whether the policy with this uid controls it.
    func isControlled(by uid: String?) -> Bool {
        guard let uid else { return false }
        return metadata.ownerReferences?.contains { $0.uid == uid && $0.controller == true } ?? false
    }
}

/// A Job the controller's CronJobs (or run-now) started: only whether and how it ended.
/// Decoded leniently: a condition this controller does not know, or a time it cannot read,
/// never makes the watch fail.
public struct ObservedJob: KubeObject {
    public enum Outcome: Sendable, Equatable {
        case complete
        case failed
    }

    public var metadata: ObjectMeta
    /// Set once the Job has a true `Complete` or `Failed` condition: its outcome, whatever
    /// its pods did on the way (a retried Job whose second pod succeeded is `complete`).
    public let outcome: Outcome?
    /// When it ended (the condition's transition time, else `completionTime`).
    public let finishedAt: KubeTimestamp?
    /// The condition's message (`Job has reached the specified backoff limit`).
    public let message: String?

    private enum CodingKeys: String, CodingKey { case metadata, status }
    private struct Status: Decodable {
        struct JobCondition: Decodable {
            let type: String?
            let status: String?
            let lastTransitionTime: String?
            let message: String?
        }
        let conditions: [JobCondition]?
        let completionTime: String?
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        metadata = try container.decode(ObjectMeta.self, forKey: .metadata).trimmedForCache()
        let status = try? container.decodeIfPresent(Status.self, forKey: .status)
        let finished = status?.conditions?.first { ($0.type == "Complete" || $0.type == "Failed") && $0.status == "True" }
        outcome = finished.map { $0.type == "Complete" ? .complete : .failed }
        finishedAt = (finished?.lastTransitionTime ?? status?.completionTime).flatMap(KubeTimestamp.init)
        message = finished?.message
    }

    public init(metadata: ObjectMeta, outcome: Outcome?, finishedAt: KubeTimestamp?, message: String? = nil) {
        self.metadata = metadata
        self.outcome = outcome
        self.finishedAt = finishedAt
        self.message = message
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(metadata, forKey: .metadata)
    }

    var environment: String? { metadata.labels?[CronJobBuilder.environmentLabel] }
}

extension ObjectMeta {
    /// Without what a reconcile of owned objects never reads (uid, times, generation,
    /// finalizers, managedFields): kept for thousands of objects.
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
