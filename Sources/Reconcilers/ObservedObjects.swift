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
/// (a schema older than this controller, a hand-made CRD) is still cached, and its status can
/// say what is wrong instead of the whole watch failing.
///
/// The policy is kept as compact JSON (managedFields dropped) and decoded for each reconcile:
/// the typed value, with its many optional fields laid out inline, is about 5 KiB against
/// 2 KiB of JSON, and a reconcile is rare next to the time a policy sits in the cache.
public struct ObservedPolicy: KubeObject, Equatable, JSONValueDecodable {
    public var metadata: ObjectMeta
    private let encoded: Data

    /// Who applied which field is the server's business, and can be most of the object.
    public static var unreadFields: [[String]] { [["metadata", "managedFields"]] }

    public init(json: JSONValue) throws(JSONValue.ShapeError) {
        guard let metadata = json["metadata"] else { throw JSONValue.ShapeError(field: "metadata", expected: "an object") }
        self.metadata = try ObjectMeta(json: metadata)
        self.metadata.managedFields = nil
        var trimmed = json
        trimmed["metadata"]?["managedFields"] = nil
        encoded = trimmed.encoded()
    }

    public init(from decoder: any Decoder) throws {
        try self.init(json: JSONValue(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try JSONValue.decode(encoded).encode(to: encoder)
    }

    private var decoded: Result<BackupPolicy, DecodingError> {
        Result { () throws(DecodingError) -> BackupPolicy in
            do { return try JSONDecoder().decode(BackupPolicy.self, from: encoded) }
            catch let error as DecodingError { throw error }
            catch { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "\(error)")) }
        }
    }

    /// The policy, typed; nil when it does not decode (see `decodingError`).
    public var policy: BackupPolicy? { try? decoded.get() }

    /// Why `policy` is nil: the field and what was expected there.
    public var decodingError: String? {
        guard case .failure(let error) = decoded else { return nil }
        return Self.describe(error)
    }

    /// The status of a policy that does not decode, when that part still does (its other
    /// conditions and history are kept while the spec is wrong).
    var statusOfUndecodable: BackupPolicy.Status? {
        guard let status = (try? JSONValue.decode(encoded))?["status"] else { return nil }
        return try? JSONDecoder().decode(BackupPolicy.Status.self, from: status.encoded())
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
public struct ObservedCronJob: KubeObject, JSONValueDecodable {
    public var metadata: ObjectMeta
    /// `backstop.dev/spec-hash`: what the builder wanted when it was last applied.
    public let specHash: String?
    /// `FieldSet.stableHash` of the fields the `backstop` manager's Apply entry owns; nil
    /// when it owns none (made or taken over by someone else). A hand edit of a field
    /// Backstop sets moves that field to the editor's entry, and changes this.
    public let appliedFieldsHash: UInt64?

    private enum CodingKeys: String, CodingKey { case metadata }

    public static var unreadFields: [[String]] { [["spec"], ["status"]] }

    /// Read from the watch: the hash of Backstop's fields straight from their `FieldsV1` tree,
    /// and no other manager's fields parsed at all.
    public init(json: JSONValue) throws(JSONValue.ShapeError) {
        var metadata = json["metadata"] ?? .null
        let applied = metadata["managedFields"]?.array?.first { entry in
            entry["manager"]?.string == PolicyReconciler.fieldManager && entry["operation"] == "Apply" && entry["subresource"] == nil
        }
        metadata["managedFields"] = nil
        let full = try ObjectMeta(json: metadata)
        self.metadata = full.trimmedForCache()
        specHash = full.annotations?[CronJobBuilder.specHashAnnotation]
        appliedFieldsHash = applied.map { FieldSet.stableHash(ofFieldsV1: $0["fieldsV1"] ?? .object([:])) }
    }

    /// `Decodable` as `KubeObject` requires; read the same way as from the client.
    public init(from decoder: any Decoder) throws {
        try self.init(json: JSONValue(from: decoder))
    }

    /// Only the metadata: the rest is not kept.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(metadata, forKey: .metadata)
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
public struct ObservedJob: KubeObject, JSONValueDecodable {
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
    /// When the Job controller started it (`status.startTime`): nil while it waits.
    public let startedAt: KubeTimestamp?

    private enum CodingKeys: String, CodingKey { case metadata }

    public static var unreadFields: [[String]] { [["spec"]] }

    public init(json: JSONValue) throws(JSONValue.ShapeError) {
        metadata = try ObjectMeta(json: json["metadata"] ?? .null).trimmedForCache()
        let finished = json[path: "status.conditions"]?.array?.first { condition in
            (condition["type"] == "Complete" || condition["type"] == "Failed") && condition["status"] == "True"
        }
        outcome = finished.map { $0["type"] == "Complete" ? .complete : .failed }
        finishedAt = (finished?["lastTransitionTime"]?.string ?? json[path: "status.completionTime"]?.string).flatMap(KubeTimestamp.init)
        message = finished?["message"]?.string
        startedAt = json[path: "status.startTime"]?.string.flatMap(KubeTimestamp.init)
    }

    /// `Decodable` as `KubeObject` requires; read the same way as from the client.
    public init(from decoder: any Decoder) throws {
        try self.init(json: JSONValue(from: decoder))
    }

    public init(metadata: ObjectMeta, outcome: Outcome?, finishedAt: KubeTimestamp?, message: String? = nil, startedAt: KubeTimestamp? = nil) {
        self.metadata = metadata
        self.outcome = outcome
        self.finishedAt = finishedAt
        self.message = message
        self.startedAt = startedAt
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(metadata, forKey: .metadata)
    }

    var environment: String? { metadata.labels?[CronJobBuilder.environmentLabel] }
    /// `drill` or `archiving` for those Jobs; nil for a backup's.
    var task: String? { metadata.labels?[CronJobBuilder.taskLabel] }
    var isBackup: Bool { task == nil }
}

extension ObjectMeta {
    /// Only what a reconcile of owned objects reads: name, namespace, version, Backstop's
    /// policy, environment, task and restore labels (the caches' index and the Jobs' kind), the controller reference. Kept for
    /// thousands of objects, so no other labels, annotations, times or managedFields.
    ///
    /// Strings every cached object repeats (the label keys, the owner's apiVersion and kind)
    /// are the program's constants rather than the copies each decode allocated.
    func trimmedForCache() -> ObjectMeta {
        let kept = labels.map { labels in
            var kept: [String: String] = [:]
            for key in Self.cachedLabels { if let value = labels[key] { kept[key] = value } }
            return kept
        }
        var trimmed = ObjectMeta(name: name, namespace: namespace, labels: kept)
        trimmed.resourceVersion = resourceVersion
        trimmed.ownerReferences = ownerReferences?.filter { $0.controller == true }.map { reference in
            var shared = reference
            for (apiVersion, kind) in Self.ownerKinds where reference.apiVersion == apiVersion && reference.kind == kind {
                shared.apiVersion = apiVersion
                shared.kind = kind
            }
            return shared
        }
        return trimmed
    }

    private static let cachedLabels = [CronJobBuilder.policyLabel, CronJobBuilder.environmentLabel, CronJobBuilder.taskLabel, CronJobBuilder.restoreLabel]
    private static let ownerKinds = [(BackupPolicy.apiVersion, BackupPolicy.kind), (BackupRestore.apiVersion, BackupRestore.kind)]
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
