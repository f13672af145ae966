internal import Foundation
internal import KubeClient
internal import KubeObjects

/// The server's state, guarded by one condition (watches wait on it for new events).
final class ObjectStore: @unchecked Sendable {
    struct Key: Hashable {
        let resource: String
        let namespace: String?
        let name: String
    }

    struct Resource {
        let type: ResourceType
        var hasStatus: Bool
        var shortNames: [String] = []
        /// A CRD version's `schema.openAPIV3Schema`; built-ins are not validated.
        var schema: JSONValue?
        /// A CRD version's `additionalPrinterColumns`, for `kubectl get`'s Table.
        var printerColumns: [JSONValue] = []
        /// How its lists merge under server-side apply.
        var lists: ListTypes = .builtIn

        var isCustom: Bool { schema != nil }
    }

    /// A change, kept for watches: its line written once, not once per watcher.
    struct Event {
        let version: Int
        let key: Key
        /// The object's labels, for watches with a label selector.
        let labels: JSONValue?
        /// `{"type":…,"object":…}` and a newline, as the watch stream carries it.
        let line: String
    }

    /// The built-in kinds stored, whether they have a status subresource, and their short names.
    static let builtIns: [(type: ResourceType, hasStatus: Bool, shortNames: [String])] = [
        (.pods, true, ["po"]), (.secrets, false, []), (.configMaps, false, ["cm"]), (.serviceAccounts, false, ["sa"]),
        (.services, true, ["svc"]), (.events, false, ["ev"]), (.namespaces, true, ["ns"]), (.jobs, true, []),
        (.cronJobs, true, ["cj"]), (.deployments, true, ["deploy"]), (.statefulSets, true, ["sts"]), (.leases, false, []),
        (.roles, false, []), (.roleBindings, false, []), (.clusterRoles, false, []), (.clusterRoleBindings, false, []),
        (.customResourceDefinitions, true, ["crd", "crds"]),
    ]
    static let rbacKinds: Set<String> = Set([ResourceType.roles, .roleBindings, .clusterRoles, .clusterRoleBindings].map(resourceID))

    /// Which Kubernetes release this server answers as (`/version`, and what it drops).
    let version: KubernetesVersion
    private let condition = NSCondition()
    private var resources: [String: Resource] = [:]
    private var objects: [Key: JSONValue] = [:]
    /// The RBAC objects again, so authorizing a request does not scan every object.
    private var rbac: [Key: JSONValue] = [:]
    private var users: [String: APIUser] = [:]
    private var resourceVersion = 1
    private var events: [Event] = []
    /// Watches from a version at or below this get 410 Gone (the knob expires every version
    /// handed out so far, so even a caught-up watcher must relist).
    private var compactedThrough = 0
    private var failures: (count: Int, status: Int, retryAfter: Int?) = (0, 0, nil)
    private var latency: Duration = .zero
    private var bookmarkInterval: Duration = .seconds(1)
    private var jobRunner: JobRunner?
    /// Where pods that mount a ServiceAccount token reach this server.
    private var serverURL: String?
    /// Pod logs (`namespace/name` → text) from the Job runner, for the `log` subresource.
    private var podLogs: [String: String] = [:]

    init(version: KubernetesVersion) {
        self.version = version
        for entry in Self.builtIns {
            resources[Self.resourceID(entry.type)] = Resource(type: entry.type, hasStatus: entry.hasStatus, shortNames: entry.shortNames)
        }
    }

    static func resourceID(_ type: ResourceType) -> String { "\(type.group)/\(type.version)/\(type.plural)" }

    // MARK: Knobs

    var currentVersion: Int { locked { resourceVersion } }
    func compact() { locked { compactedThrough = resourceVersion } }
    func setFailures(count: Int, status: Int, retryAfter: Int?) { locked { failures = (count, status, retryAfter) } }
    func setLatency(_ value: Duration) { locked { latency = value } }
    func setBookmarkInterval(_ value: Duration) { locked { bookmarkInterval = value } }
    func get(_ key: Key) -> JSONValue? { locked { objects[key] } }
    func setJobRunner(_ runner: JobRunner?) { locked { jobRunner = runner } }
    func setServerURL(_ url: String) { locked { serverURL = url } }
    func register(token: String, for user: APIUser) { locked { users[token] = user } }
    func user(forToken token: String) -> APIUser? { locked { users[token] } }

    func takeFailure() -> Int? {
        locked {
            guard failures.count > 0 else { return nil }
            failures.count -= 1
            return failures.status
        }
    }

    func applyLatency() {
        let wait = locked { latency }
        if wait > .zero { Thread.sleep(forTimeInterval: wait / .seconds(1)) }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    // MARK: Routing

    func route(_ request: LoopbackHTTPServer.Request, segments: [String], user: APIUser) -> LoopbackHTTPServer.Response {
        // /api/v1/… or /apis/<group>/<version>/…
        let core = segments[0] == "api"
        if segments.count == 1 { return discoveryRoot(core: core) }
        if !core && segments.count == 2 { return TestAPIServer.status(404, "NotFound", "no group version \(segments[1])") }
        let group = core ? "" : segments[1]
        let apiVersion = core ? segments[1] : segments[2]
        var rest = Array(segments.dropFirst(core ? 2 : 3))
        if rest.isEmpty { return discovery(group: group, version: apiVersion) }
        var namespace: String?
        if rest[0] == "namespaces", rest.count >= 3 {
            namespace = rest[1]
            rest.removeFirst(2)
        }
        guard let resource = locked({ resources["\(group)/\(apiVersion)/\(rest[0])"] }) else {
            return TestAPIServer.status(404, "NotFound", "the server could not find the requested resource (\(rest[0]))")
        }
        if resource.type.namespaced && namespace == nil && rest.count > 1 {
            return TestAPIServer.status(404, "NotFound", "\(resource.type) is namespaced")
        }
        let name = rest.count > 1 ? rest[1] : nil
        let subresource = rest.count > 2 ? rest[2] : nil
        let podLog = resource.type == .pods && subresource == "log"
        if let subresource, !podLog, subresource != "status" || !resource.hasStatus {
            return TestAPIServer.status(404, "NotFound", "no subresource \(subresource) on \(resource.type)")
        }
        let watching = request.query["watch"] == "true" || request.query["watch"] == "1"
        let verb: String
        switch (request.method, name) {
        case ("GET", nil): verb = watching ? "watch" : "list"
        case ("GET", _): verb = "get"
        case ("POST", _): verb = "create"
        case ("PUT", _): verb = "update"
        case ("PATCH", _): verb = "patch"
        case ("DELETE", _): verb = "delete"
        default: verb = request.method.lowercased()
        }
        let attributes = Authorizer.Attributes(verb: verb, group: group, resource: resource.type.plural, subresource: subresource,
                                               namespace: namespace, name: name)
        if !user.groups.contains("system:masters") {
            let authorizer = locked { () -> Authorizer in
                func of(_ type: ResourceType) -> [JSONValue] { rbac.filter { $0.key.resource == Self.resourceID(type) }.map(\.value) }
                return Authorizer(roles: of(.roles), clusterRoles: of(.clusterRoles), roleBindings: of(.roleBindings),
                                  clusterRoleBindings: of(.clusterRoleBindings))
            }
            guard authorizer.allows(user, attributes) else { return TestAPIServer.json(403, Authorizer.refusal(user, attributes)) }
        }
        if podLog, let namespace, let name {
            guard request.method == "GET" else { return TestAPIServer.status(405, "MethodNotAllowed", "pods/log is read-only") }
            // What the runner's process wrote; the real kubelet streams it, here it is whole.
            guard let log = locked({ podLogs["\(namespace)/\(name)"] }) else {
                return locked({ objects[Key(resource: Self.resourceID(.pods), namespace: namespace, name: name)] }) == nil
                    ? TestAPIServer.status(404, "NotFound", "pods \"\(name)\" not found")
                    : .full(status: 200, contentType: "text/plain", body: [])
            }
            return .full(status: 200, contentType: "text/plain", body: Array(log.utf8))
        }
        let contentType = request.headers["content-type"] ?? ""
        let body = request.body.isEmpty ? nil : RequestBody.decode(request.body, contentType: contentType)
        if !request.body.isEmpty && body == nil {
            return TestAPIServer.status(400, "BadRequest", "the body is not JSON")
        }
        // Who wrote what, for managedFields: the fieldManager asked for, else the client's
        // name from its User-Agent (`kubectl/v1.32.4 (linux/amd64) …` → `kubectl`), as the real
        // server names it.
        let agent = request.headers["user-agent"].flatMap { $0.split(separator: "/").first.map(String.init) }
        let manager = request.query["fieldManager"] ?? agent ?? "unknown"
        switch (request.method, name) {
        case ("GET", nil) where watching:
            return watch(resource, namespace: namespace, query: request.query)
        case ("GET", nil):
            let answer = list(resource, namespace: namespace, query: request.query)
            return Self.wantsTable(request) ? table(resource, answer) : answer
        case ("GET", let name?):
            let answer = read(resource, namespace: namespace, name: name)
            return Self.wantsTable(request) ? table(resource, answer) : answer
        case ("POST", nil): return create(resource, namespace: namespace, body: body, manager: manager, fromClient: true)
        case ("PUT", let name?):
            guard let body, body.object != nil else { return TestAPIServer.status(400, "BadRequest", "the body must be an object") }
            return locked { write(resource, namespace: namespace, name: name, candidate: body, subresource: subresource, manager: manager) }
        case ("PATCH", let name?) where contentType.hasPrefix("application/apply-patch"):
            return apply(resource, namespace: namespace, name: name, body: body, query: request.query)
        case ("PATCH", let name?):
            return patch(resource, namespace: namespace, name: name, body: body, contentType: contentType, subresource: subresource, manager: manager)
        case ("DELETE", let name?): return delete(resource, namespace: namespace, name: name)
        default: return TestAPIServer.status(405, "MethodNotAllowed", "\(request.method) is not allowed here")
        }
    }

    // MARK: Tables (kubectl get)

    static func wantsTable(_ request: LoopbackHTTPServer.Request) -> Bool {
        (request.headers["accept"] ?? "").contains("as=Table")
    }

    /// Turns a list or object answer into a `meta.k8s.io/v1` Table: Name, the CRD's printer
    /// columns, Age.
    /// The Table form of a get or list, as apiextensions' table convertor builds it: Name, then
    /// the declared printer columns only (a kind that declares none gets Age, the server's
    /// default column), `date` cells as ages (`5m`), a missing value as null.
    private func table(_ resource: Resource, _ answer: LoopbackHTTPServer.Response) -> LoopbackHTTPServer.Response {
        guard case let .full(200, _, body) = answer, let value = try? JSONValue.decode(Data(body)) else { return answer }
        let objects = value["items"]?.array ?? [value]
        var columns: [JSONValue] = [.object(["name": .string("Name"), "type": .string("string"), "format": .string("name"),
                                             "description": .string("Name of the object"), "priority": .number(0)])]
        let declared = resource.printerColumns.isEmpty
            ? [.object(["name": .string("Age"), "type": .string("date"), "jsonPath": .string(".metadata.creationTimestamp")])]
            : resource.printerColumns
        var paths: [(path: String, type: String)] = []
        for column in declared {
            guard let name = column["name"]?.string, let path = column["jsonPath"]?.string else { continue }
            let type = column["type"]?.string ?? "string"
            columns.append(.object(["name": .string(name), "type": .string(type), "format": column["format"] ?? .string(""),
                                    "description": column["description"] ?? .string(""), "priority": column["priority"] ?? .number(0)]))
            paths.append((path, type))
        }
        let rows: [JSONValue] = objects.map { object in
            var cells: [JSONValue] = [object[path: "metadata.name"] ?? .string("")]
            for (path, type) in paths {
                let found = Self.evaluate(path, in: object)
                if type == "date", let text = found?.string {
                    cells.append(.string(KubeTime.parse(text) == nil ? "<invalid>" : Self.age(text)))
                } else {
                    cells.append(found ?? .null)
                }
            }
            return .object(["cells": .array(cells), "object": .object([
                "kind": .string("PartialObjectMetadata"), "apiVersion": .string("meta.k8s.io/v1"), "metadata": object["metadata"] ?? .object([:]),
            ])])
        }
        return TestAPIServer.json(200, .object(["kind": .string("Table"), "apiVersion": .string("meta.k8s.io/v1"),
                                                "metadata": value["metadata"] ?? .object([:]),
                                                "columnDefinitions": .array(columns), "rows": .array(rows)]))
    }

    /// A printer column's JSONPath, as the API server's table convertor evaluates it: the
    /// path may fan out (`[*]`, a filter such as `[?(@.type=="Ready")]`), and the cell is the
    /// first value found, so `.status.environments[*].name` shows one environment only.
    static func evaluate(_ path: String, in object: JSONValue) -> JSONValue? {
        var current: [JSONValue] = [object]
        var rest = Substring(path)
        while !rest.isEmpty {
            if rest.hasPrefix(".") {
                rest = rest.dropFirst()
                let name = rest.prefix { $0 != "." && $0 != "[" }
                rest = rest.dropFirst(name.count)
                current = current.compactMap { $0[String(name)] }
            } else if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
                let inner = rest[rest.index(after: rest.startIndex)..<close]
                rest = rest[rest.index(after: close)...]
                if inner == "*" {
                    current = current.flatMap { $0.array ?? $0.object.map { Array($0.values) } ?? [] }
                } else if let index = Int(inner) {
                    current = current.compactMap { $0.array.flatMap { $0.indices.contains(index) ? $0[index] : nil } }
                } else if inner.hasPrefix("?(@."), inner.hasSuffix(")"), let equals = inner.range(of: "==") {
                    let field = String(inner[inner.index(inner.startIndex, offsetBy: 4)..<equals.lowerBound])
                    let literal = inner[equals.upperBound..<inner.index(before: inner.endIndex)].trimmingCharacters(in: CharacterSet(charactersIn: "\"' "))
                    current = current.flatMap { $0.array ?? [] }.filter { item in
                        guard let value = item[path: field] else { return false }
                        return value.string == literal || (value.number.map { "\($0)" == literal || "\(Int($0))" == literal } ?? false)
                            || (value == .bool(literal == "true") && ["true", "false"].contains(literal))
                    }
                } else {
                    return nil
                }
            } else {
                return nil
            }
        }
        return current.first
    }

    /// kubectl's short ages: 45s, 5m, 3h, 2d.
    static func age(_ timestamp: String?) -> String {
        guard let timestamp, let date = KubeTime.parse(timestamp) else { return "<unknown>" }
        let seconds = max(0, Int(Date().timeIntervalSince(date)))
        switch seconds {
        case ..<120: return "\(seconds)s"
        case ..<7_200: return "\(seconds / 60)m"
        case ..<172_800: return "\(seconds / 3_600)h"
        default: return "\(seconds / 86_400)d"
        }
    }

    // MARK: Discovery (enough for clients that look before they ask)

    private func discoveryRoot(core: Bool) -> LoopbackHTTPServer.Response {
        if core { return TestAPIServer.json(200, .object(["kind": .string("APIVersions"), "versions": .array([.string("v1")])])) }
        let groups = locked { Set(resources.values.map(\.type).filter { !$0.group.isEmpty }.map { "\($0.group)/\($0.version)" }) }
        let list: [JSONValue] = groups.sorted().map { entry in
            let parts = entry.split(separator: "/").map(String.init)
            let version: JSONValue = .object(["groupVersion": .string(entry), "version": .string(parts[1])])
            return .object(["name": .string(parts[0]), "versions": .array([version]), "preferredVersion": version])
        }
        return TestAPIServer.json(200, .object(["kind": .string("APIGroupList"), "apiVersion": .string("v1"), "groups": .array(list)]))
    }

    private func discovery(group: String, version: String) -> LoopbackHTTPServer.Response {
        let found = locked { resources.values.filter { $0.type.group == group && $0.type.version == version } }
        var entries: [JSONValue] = []
        for resource in found.sorted(by: { $0.type.plural < $1.type.plural }) {
            let verbs: JSONValue = .array(["create", "delete", "get", "list", "patch", "update", "watch"].map { .string($0) })
            entries.append(.object(["name": .string(resource.type.plural), "singularName": .string(resource.type.kind.lowercased()),
                                    "namespaced": .bool(resource.type.namespaced), "kind": .string(resource.type.kind), "verbs": verbs,
                                    "shortNames": .array(resource.shortNames.map { .string($0) })]))
            if resource.hasStatus {
                entries.append(.object(["name": .string(resource.type.plural + "/status"), "singularName": .string(""),
                                        "namespaced": .bool(resource.type.namespaced), "kind": .string(resource.type.kind),
                                        "verbs": .array([.string("get"), .string("patch"), .string("update")])]))
            }
        }
        let groupVersion = group.isEmpty ? version : "\(group)/\(version)"
        return TestAPIServer.json(200, .object(["kind": .string("APIResourceList"), "apiVersion": .string("v1"),
                                                "groupVersion": .string(groupVersion), "resources": .array(entries)]))
    }


    // MARK: Verbs

    private func key(_ resource: Resource, _ namespace: String?, _ name: String) -> Key {
        Key(resource: Self.resourceID(resource.type), namespace: resource.type.namespaced ? namespace : nil, name: name)
    }

    private func read(_ resource: Resource, namespace: String?, name: String) -> LoopbackHTTPServer.Response {
        guard let object = locked({ objects[key(resource, namespace, name)] }) else { return notFound(resource, name) }
        return TestAPIServer.json(200, object)
    }

    private func notFound(_ resource: Resource, _ name: String) -> LoopbackHTTPServer.Response {
        TestAPIServer.status(404, "NotFound", "\(resource.type) \"\(name)\" not found")
    }

    private func list(_ resource: Resource, namespace: String?, query: [String: String]) -> LoopbackHTTPServer.Response {
        let selector = LabelSelector(query["labelSelector"] ?? "")
        let (items, current) = locked { () -> ([JSONValue], Int) in
            let id = Self.resourceID(resource.type)
            let matching = objects.filter { $0.key.resource == id && (namespace == nil || $0.key.namespace == namespace) && selector.matches($0.value) }
            return (matching.sorted { ($0.key.namespace ?? "", $0.key.name) < ($1.key.namespace ?? "", $1.key.name) }.map(\.value), resourceVersion)
        }
        let offset = query["continue"].flatMap(Int.init) ?? 0
        let limit = query["limit"].flatMap(Int.init).flatMap { $0 > 0 ? $0 : nil } ?? Int.max
        let page = Array(items.dropFirst(offset).prefix(limit))
        var metadata: [String: JSONValue] = ["resourceVersion": .string("\(current)")]
        if offset + page.count < items.count { metadata["continue"] = .string("\(offset + page.count)") }
        return TestAPIServer.json(200, .object(["kind": .string(resource.type.kind + "List"), "apiVersion": .string(resource.type.apiVersion),
                                                "metadata": .object(metadata), "items": .array(page)]))
    }

    /// POST (and an apply that finds nothing). `manager` records an `Update` entry in
    /// managedFields; nil when the body carries them already (an apply's). A client's status
    /// is dropped, as the real server drops it; the server's own creates (the Job runner's
    /// Pods) keep theirs.
    private func create(_ resource: Resource, namespace: String?, body: JSONValue?, manager: String?, fromClient: Bool) -> LoopbackHTTPServer.Response {
        guard var object = body, object.object != nil else { return TestAPIServer.status(400, "BadRequest", "the body must be an object") }
        var metadata = object["metadata"]?.object ?? [:]
        if metadata["name"]?.string == nil, let prefix = metadata["generateName"]?.string {
            metadata["name"] = .string(prefix + String(UUID().uuidString.lowercased().prefix(5)))
        }
        guard let name = metadata["name"]?.string, !name.isEmpty else {
            return TestAPIServer.status(422, "Invalid", "metadata.name: Required value")
        }
        if resource.type.namespaced {
            guard let namespace else { return TestAPIServer.status(400, "BadRequest", "\(resource.type) is namespaced") }
            metadata["namespace"] = .string(namespace)
        }
        return locked { () -> LoopbackHTTPServer.Response in
            let key = key(resource, namespace, name)
            guard objects[key] == nil else {
                return TestAPIServer.status(409, "AlreadyExists", "\(resource.type) \"\(name)\" already exists")
            }
            let uid = UUID().uuidString.lowercased()
            if manager != nil { metadata["managedFields"] = nil }
            object["metadata"] = .object(metadata)
            object["kind"] = .string(resource.type.kind)
            object["apiVersion"] = .string(resource.type.apiVersion)
            if fromClient, resource.hasStatus, resource.type != .namespaces { object["status"] = nil }
            let (checked, invalid) = admitted(resource, name, object)
            if let invalid { return invalid }
            object = checked
            if let manager {
                object = FieldManager(lists: resource.lists, apiVersion: resource.type.apiVersion, now: Self.now())
                    .update(from: nil, to: object, manager: manager, subresource: nil)
            }
            if !resource.isCustom { BuiltInDefaults.prepareForCreate(&object, kind: resource.type.kind, uid: uid) }
            resourceVersion += 1
            object["metadata"]?["uid"] = .string(uid)
            object["metadata"]?["creationTimestamp"] = .string(Self.now())
            object["metadata"]?["resourceVersion"] = .string("\(resourceVersion)")
            object["metadata"]?["deletionTimestamp"] = nil
            if resource.isCustom || resource.type == .customResourceDefinitions || [.jobs, .cronJobs, .deployments, .statefulSets].contains(resource.type) {
                object["metadata"]?["generation"] = .number(1)
            }
            if resource.hasStatus, object["status"] == nil { object["status"] = .object([:]) }
            objects[key] = object
            let encoded = record("ADDED", key, object)
            if resource.type == .customResourceDefinitions { register(object) }
            if resource.type == .jobs, let runner = jobRunner {
                let job = object
                Task { await self.runJob(job, with: runner) }
            }
            return .full(status: 201, contentType: "application/json", body: encoded)
        }
    }

    /// Server-side apply (recordings 03a–03f): ownership per field manager, conflicts unless
    /// forced, removal of what a manager stopped applying, creation when absent.
    private func apply(_ resource: Resource, namespace: String?, name: String, body: JSONValue?, query: [String: String]) -> LoopbackHTTPServer.Response {
        guard let body, body.object != nil else { return TestAPIServer.status(400, "BadRequest", "the body must be an object") }
        guard let manager = query["fieldManager"], !manager.isEmpty else {
            return TestAPIServer.status(422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
        }
        if resource.type == .cronJobs, !version.servesCronJobTimeZone, body[path: "spec.timeZone"] != nil {
            // The field is not in a v1.24 server's schema: its typed patch cannot be built (03b).
            return TestAPIServer.json(500, ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Failure", "code": 500, "message": .string(
                "failed to create typed patch object (\(namespace.map { "\($0)/" } ?? "")\(name); \(resource.type.apiVersion), Kind=\(resource.type.kind)): .spec.timeZone: field not declared in schema")])
        }
        let fieldManager = FieldManager(lists: resource.lists, apiVersion: resource.type.apiVersion, now: Self.now())
        let force = query["force"] == "true"
        condition.lock()
        let current = objects[key(resource, namespace, name)]
        let merged: JSONValue
        do {
            merged = try fieldManager.apply(body, to: current, manager: manager, force: force, canonical: BuiltInDefaults.canonicalQuantities)
        } catch {
            condition.unlock()
            return TestAPIServer.json(409, error.status)
        }
        guard current != nil else {
            condition.unlock()
            return create(resource, namespace: namespace, body: merged, manager: nil, fromClient: true)
        }
        defer { condition.unlock() }
        return write(resource, namespace: namespace, name: name, candidate: merged, subresource: nil, manager: nil)
    }

    private func patch(_ resource: Resource, namespace: String?, name: String, body: JSONValue?, contentType: String,
                       subresource: String?, manager: String) -> LoopbackHTTPServer.Response {
        guard let body else { return TestAPIServer.status(400, "BadRequest", "empty patch") }
        return locked { () -> LoopbackHTTPServer.Response in
            let key = key(resource, namespace, name)
            guard let current = objects[key] else { return notFound(resource, name) }
            var candidate: JSONValue
            switch contentType.split(separator: ";").first.map(String.init) ?? "" {
            case "application/strategic-merge-patch+json":
                guard !resource.isCustom else {
                    return TestAPIServer.status(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
                }
                candidate = StrategicMerge.apply(body, to: current)
                if body[path: "metadata.resourceVersion"] == nil { candidate["metadata"]?["resourceVersion"] = nil }
            case "application/merge-patch+json":
                candidate = current.merged(with: body)
                // A merge patch names a resourceVersion only to demand it.
                if body[path: "metadata.resourceVersion"] == nil { candidate["metadata"]?["resourceVersion"] = nil }
            case "application/json-patch+json":
                guard let operations = body.array else { return TestAPIServer.status(400, "BadRequest", "a JSON patch is a list") }
                do { candidate = try JSONPatch.apply(operations, to: current) }
                catch { return TestAPIServer.status(422, "Invalid", "\(error)") }
                candidate["metadata"]?["resourceVersion"] = nil
            default:
                return TestAPIServer.status(415, "UnsupportedMediaType", "unsupported patch type \(contentType)")
            }
            return write(resource, namespace: namespace, name: name, candidate: candidate, subresource: subresource, manager: manager)
        }
    }

    /// Stores an update under the lock: 409 on a stale resourceVersion, status-subresource
    /// rules, defaults and validation, managedFields (an `Update` entry for `manager`; nil when
    /// the candidate's are an apply's), generation bumped on spec changes, finalizer-driven
    /// deletion. A write that changes nothing is no write: same resourceVersion, no event (05c).
    private func write(_ resource: Resource, namespace: String?, name: String, candidate: JSONValue, subresource: String?,
                       manager: String?) -> LoopbackHTTPServer.Response {
        let key = key(resource, namespace, name)
        guard let current = objects[key] else { return notFound(resource, name) }
        if let asked = candidate[path: "metadata.resourceVersion"]?.string, !asked.isEmpty,
           asked != current[path: "metadata.resourceVersion"]?.string {
            return TestAPIServer.json(409, ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Failure", "reason": "Conflict", "code": 409,
                                            "details": ["name": .string(name), "group": .string(resource.type.group), "kind": .string(resource.type.plural)],
                                            "message": .string("Operation cannot be fulfilled on \(resource.type) \"\(name)\": the object has been modified; please apply your changes to the latest version and try again")])
        }
        var next: JSONValue
        if subresource == "status" {
            next = current
            next["status"] = candidate["status"]
        } else {
            next = candidate
            if resource.hasStatus { next["status"] = current["status"] }
            // Identity and server-owned fields stay as stored.
            var metadata = next["metadata"]?.object ?? [:]
            for field in ["uid", "creationTimestamp", "generation", "deletionTimestamp", "namespace", "name"] {
                metadata[field] = current[path: "metadata.\(field)"]
            }
            if manager != nil { metadata["managedFields"] = current[path: "metadata.managedFields"] }
            next["metadata"] = .object(metadata)
            next["kind"] = current["kind"]
            next["apiVersion"] = current["apiVersion"]
        }
        let (checked, invalid) = admitted(resource, name, next)
        if let invalid { return invalid }
        next = checked
        if let manager {
            next = FieldManager(lists: resource.lists, apiVersion: resource.type.apiVersion, now: Self.now())
                .update(from: current, to: next, manager: manager, subresource: subresource)
        }
        next["metadata"]?["resourceVersion"] = current[path: "metadata.resourceVersion"]
        if Self.withoutTimes(next) == Self.withoutTimes(current) { return TestAPIServer.json(200, current) }
        // Compared after defaulting, so a write that omits defaulted fields changes nothing.
        if subresource == nil, current[path: "metadata.generation"] != nil, Self.spec(of: next) != Self.spec(of: current) {
            let generation = current[path: "metadata.generation"]?.number ?? 1
            next["metadata"]?["generation"] = .number(generation + 1)
        }
        resourceVersion += 1
        next["metadata"]?["resourceVersion"] = .string("\(resourceVersion)")
        if next[path: "metadata.deletionTimestamp"] != nil, (next[path: "metadata.finalizers"]?.array ?? []).isEmpty {
            remove(key, next)
            return TestAPIServer.json(200, next)
        }
        objects[key] = next
        return .full(status: 200, contentType: "application/json", body: record("MODIFIED", key, next))
    }

    /// The object without the times managedFields carry: a write whose only change is the
    /// time of its manager's entry changes nothing.
    private static func withoutTimes(_ object: JSONValue) -> JSONValue {
        var copy = object
        if let entries = object[path: "metadata.managedFields"]?.array {
            copy["metadata"]?["managedFields"] = .array(entries.map { entry in
                var entry = entry
                entry["time"] = nil
                return entry
            })
        }
        return copy
    }

    private func delete(_ resource: Resource, namespace: String?, name: String) -> LoopbackHTTPServer.Response {
        locked { () -> LoopbackHTTPServer.Response in
            let key = key(resource, namespace, name)
            guard var object = objects[key] else { return notFound(resource, name) }
            if !(object[path: "metadata.finalizers"]?.array ?? []).isEmpty {
                // Finalizers hold it: it is only marked, and goes when the last one is removed.
                if object[path: "metadata.deletionTimestamp"] == nil {
                    resourceVersion += 1
                    object["metadata"]?["deletionTimestamp"] = .string(Self.now())
                    object["metadata"]?["resourceVersion"] = .string("\(resourceVersion)")
                    objects[key] = object
                    record("MODIFIED", key, object)
                }
                return TestAPIServer.json(200, object)
            }
            resourceVersion += 1
            object["metadata"]?["resourceVersion"] = .string("\(resourceVersion)")
            remove(key, object)
            guard !resource.isCustom else { return TestAPIServer.json(200, object) }
            // Built-in kinds answer a completed delete with a Status naming it (06a).
            return TestAPIServer.json(200, ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Success",
                                            "details": ["name": .string(name), "group": .string(resource.type.group),
                                                        "kind": .string(resource.type.plural), "uid": object[path: "metadata.uid"] ?? .null]])
        }
    }

    /// Removes an object and, in the background garbage collector's place, everything it owns.
    private func remove(_ key: Key, _ object: JSONValue) {
        objects[key] = nil
        record("DELETED", key, object)
        guard let uid = object[path: "metadata.uid"]?.string else { return }
        let owned = objects.filter { entry in
            (entry.value[path: "metadata.ownerReferences"]?.array ?? []).contains { $0["uid"]?.string == uid }
        }
        for (ownedKey, ownedObject) in owned {
            resourceVersion += 1
            var gone = ownedObject
            gone["metadata"]?["resourceVersion"] = .string("\(resourceVersion)")
            remove(ownedKey, gone)
        }
    }

    /// Records a change for watches; returns the object's JSON, written once for the watch
    /// line and the answer.
    @discardableResult
    private func record(_ type: String, _ key: Key, _ object: JSONValue) -> [UInt8] {
        if Self.rbacKinds.contains(key.resource) { rbac[key] = type == "DELETED" ? nil : object }
        let encoded = [UInt8](object.encoded())
        events.append(Event(version: resourceVersion, key: key, labels: object[path: "metadata.labels"], line: Self.watchLine(type, encoded: encoded)))
        if events.count > 10_000 {
            compactedThrough = max(compactedThrough, events[999].version)
            events.removeFirst(1_000)
        }
        condition.broadcast()
        return encoded
    }

    /// A CRD's served versions become resources of their own.
    private func register(_ crd: JSONValue) {
        guard let group = crd[path: "spec.group"]?.string, let plural = crd[path: "spec.names.plural"]?.string,
              let kind = crd[path: "spec.names.kind"]?.string else { return }
        let namespaced = crd[path: "spec.scope"]?.string != "Cluster"
        for entry in crd[path: "spec.versions"]?.array ?? [] {
            guard let name = entry["name"]?.string, entry["served"] != .bool(false) else { continue }
            let type = ResourceType(group: group, version: name, plural: plural, kind: kind, namespaced: namespaced)
            let shortNames = (crd[path: "spec.names.shortNames"]?.array ?? []).compactMap(\.string)
            let schema = entry[path: "schema.openAPIV3Schema"] ?? ["type": "object", "x-kubernetes-preserve-unknown-fields": true]
            resources[Self.resourceID(type)] = Resource(type: type, hasStatus: entry[path: "subresources.status"] != nil,
                                                        shortNames: shortNames, schema: schema,
                                                        printerColumns: entry["additionalPrinterColumns"]?.array ?? [],
                                                        lists: SchemaValidator.listTypes(of: schema))
        }
    }

    /// What admission does before storing: a custom resource defaulted, pruned and validated
    /// by its CRD's schema (an invalid one becomes a 422 answer); a built-in filled with the
    /// real server's defaults.
    private func admitted(_ resource: Resource, _ name: String, _ object: JSONValue) -> (JSONValue, LoopbackHTTPServer.Response?) {
        guard let schema = resource.schema else {
            var defaulted = object
            BuiltInDefaults.apply(to: &defaulted, kind: resource.type.kind, cronJobTimeZone: version.servesCronJobTimeZone)
            return (defaulted, nil)
        }
        let (result, problems) = SchemaValidator(schema: schema).apply(to: object)
        guard problems.isEmpty else {
            let kind = "\(resource.type.kind).\(resource.type.group)"
            // As the real server aggregates field errors: one plain, several in brackets.
            let causes = problems.count == 1 ? problems[0] : "[\(problems.joined(separator: ", "))]"
            return (object, TestAPIServer.status(422, "Invalid", "\(kind) \"\(name)\" is invalid: \(causes)"))
        }
        return (result, nil)
    }

    static func spec(of object: JSONValue) -> JSONValue {
        var copy = object
        copy["metadata"] = nil
        copy["status"] = nil
        return copy
    }

    static func now() -> String { KubeTime.time(Date()) }

    // MARK: Jobs

    /// Stands in for the Job controller and the kubelet: Pods for a Job, one at a time, each
    /// run by `runner` and named with a random suffix (so their order by name says nothing),
    /// a failed one followed by another while `backoffLimit` allows; the Pods' termination
    /// messages and the Job's status and conditions come from the results.
    private func runJob(_ job: JSONValue, with runner: JobRunner) async {
        guard let namespace = job[path: "metadata.namespace"]?.string, let jobName = job[path: "metadata.name"]?.string,
              let uid = job[path: "metadata.uid"]?.string else { return }
        let container = job[path: "spec.template.spec.containers"]?.array?.first ?? .object([:])
        let backoffLimit = Int(job[path: "spec.backoffLimit"]?.number ?? 6)
        var environment: [String: String] = [:]
        for variable in container["env"]?.array ?? [] {
            guard let name = variable["name"]?.string else { continue }
            if let value = variable["value"]?.string { environment[name] = value }
            else if let secretName = variable[path: "valueFrom.secretKeyRef.name"]?.string,
                    let secretKey = variable[path: "valueFrom.secretKeyRef.key"]?.string {
                environment[name] = secretData(namespace: namespace, name: secretName)[secretKey]
            } else if variable[path: "valueFrom.fieldRef.fieldPath"]?.string == "metadata.namespace" {
                environment[name] = namespace
            }
        }
        // Secret volumes as the kubelet mounts them: every key a file (or only the listed items).
        var secretFiles: [String: [String: String]] = [:]
        let volumes = job[path: "spec.template.spec.volumes"]?.array ?? []
        for mount in container["volumeMounts"]?.array ?? [] {
            guard let volumeName = mount["name"]?.string, let mountPath = mount["mountPath"]?.string,
                  let volume = volumes.first(where: { $0["name"]?.string == volumeName }),
                  let secretName = volume[path: "secret.secretName"]?.string else { continue }
            secretFiles[mountPath] = secretData(namespace: namespace, name: secretName)
        }
        // The token the kubelet mounts unless the pod says not to, for the pod's account (or
        // `default`); a pod naming an account that does not exist is never created.
        var apiAccess: JobRun.APIAccess?
        if job[path: "spec.template.spec.automountServiceAccountToken"] != .bool(false) {
            let account = job[path: "spec.template.spec.serviceAccountName"]?.string ?? "default"
            guard account == "default" || locked({ objects[Key(resource: Self.resourceID(.serviceAccounts), namespace: namespace, name: account)] }) != nil,
                  let url = locked({ serverURL }) else { return }
            let token = "sa-\(namespace)-\(account)-\(UUID().uuidString.prefix(8))"
            register(token: token, for: .serviceAccount(namespace: namespace, name: account))
            apiAccess = JobRun.APIAccess(server: url, token: token, namespace: namespace)
        }
        let fallBackToLogs = container["terminationMessagePolicy"]?.string == "FallbackToLogsOnError"
        let jobStarted = Self.now()
        var failed = 0
        for attempt in 1... {
            let podName = "\(jobName)-\(UUID().uuidString.lowercased().prefix(5))"
            let started = Self.now()
            var pod: JSONValue = .object([
                "apiVersion": .string("v1"), "kind": .string("Pod"),
                "metadata": .object(["name": .string(podName), "namespace": .string(namespace),
                                     "labels": .object(["job-name": .string(jobName), "batch.kubernetes.io/job-name": .string(jobName),
                                                        "controller-uid": .string(uid)]),
                                     "ownerReferences": .array([.object(["apiVersion": .string("batch/v1"), "kind": .string("Job"), "name": .string(jobName),
                                                                         "uid": .string(uid), "controller": .bool(true)])])]),
                "spec": job[path: "spec.template.spec"] ?? .object([:]),
                "status": .object(["phase": .string("Running"), "startTime": .string(started)]),
            ])
            guard case .full(201, _, _) = create(resources[Self.resourceID(.pods)] ?? Resource(type: .pods, hasStatus: true), namespace: namespace,
                                                 body: pod, manager: "kube-controller-manager", fromClient: false) else { return }
            updateStatus(.jobs, namespace: namespace, name: jobName) { status in
                status["startTime"] = .string(jobStarted)
                status["active"] = .number(1)
            }
            var result = await runner.run(JobRun(namespace: namespace, jobName: jobName, podName: podName, attempt: attempt,
                                                 command: (container["command"]?.array ?? []).compactMap(\.string),
                                                 args: (container["args"]?.array ?? []).compactMap(\.string), environment: environment,
                                                 secretFiles: secretFiles, apiAccess: apiAccess))
            let finished = Self.now()
            let succeeded = result.exitCode == 0
            locked { podLogs["\(namespace)/\(podName)"] = result.log }
            if !succeeded, fallBackToLogs, result.terminationMessage.isEmpty {
                // The kubelet's fallback: the log's last 80 lines, at most 2048 bytes.
                let tail = result.log.split(separator: "\n", omittingEmptySubsequences: false).suffix(80).joined(separator: "\n")
                result.terminationMessage = String(decoding: Array(tail.utf8).suffix(2048), as: UTF8.self)
            }
            pod["status"] = .object([
                "phase": .string(succeeded ? "Succeeded" : "Failed"), "startTime": .string(started),
                "containerStatuses": .array([.object([
                    "name": container["name"] ?? .string("main"),
                    "state": .object(["terminated": .object(["exitCode": .number(Double(result.exitCode)), "reason": .string(succeeded ? "Completed" : "Error"),
                                                             "message": .string(result.terminationMessage), "startedAt": .string(started),
                                                             "finishedAt": .string(finished)])]),
                ])]),
            ])
            updateStatus(.pods, namespace: namespace, name: podName) { status in status = pod["status"] ?? .object([:]) }
            if !succeeded { failed += 1 }
            let done = succeeded || failed > backoffLimit
            updateStatus(.jobs, namespace: namespace, name: jobName) { status in
                status["active"] = done ? nil : .number(1)
                if succeeded { status["succeeded"] = .number(1) }
                if failed > 0 { status["failed"] = .number(Double(failed)) }
                guard done else { return }
                if succeeded { status["completionTime"] = .string(finished) }
                status["conditions"] = .array([.object([
                    "type": .string(succeeded ? "Complete" : "Failed"), "status": .string("True"),
                    "reason": .string(succeeded ? "Completed" : "BackoffLimitExceeded"),
                    "message": .string(succeeded ? "" : "Job has reached the specified backoff limit"),
                    "lastTransitionTime": .string(finished), "lastProbeTime": .string(finished),
                ])])
            }
            if done { return }
        }
    }

    private func updateStatus(_ type: ResourceType, namespace: String, name: String, _ change: (inout JSONValue) -> Void) {
        locked {
            let key = Key(resource: Self.resourceID(type), namespace: namespace, name: name)
            guard var object = objects[key] else { return }
            var status = object["status"] ?? .object([:])
            change(&status)
            object["status"] = status
            resourceVersion += 1
            object["metadata"]?["resourceVersion"] = .string("\(resourceVersion)")
            objects[key] = object
            record("MODIFIED", key, object)
        }
    }

    /// A Secret's keys and decoded values (`stringData` over `data`, as the API server folds
    /// them); empty when there is no such Secret.
    private func secretData(namespace: String, name: String) -> [String: String] {
        locked {
            guard let secret = objects[Key(resource: Self.resourceID(.secrets), namespace: namespace, name: name)] else { return [:] }
            var files: [String: String] = [:]
            for (key, value) in secret["data"]?.object ?? [:] {
                files[key] = value.string.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
            }
            for (key, value) in secret["stringData"]?.object ?? [:] { files[key] = value.string }
            return files
        }
    }

    /// A Job from a CronJob's jobTemplate, owned by it, as the CronJob controller makes at a
    /// scheduled time. Returns the Job's name.
    func triggerCronJob(namespace: String, name: String) -> Result<String, TriggerFailure> {
        guard let cronJob = get(Key(resource: Self.resourceID(.cronJobs), namespace: namespace, name: name)) else {
            return .failure(TriggerFailure(description: "no CronJob \(namespace)/\(name)"))
        }
        let jobName = "\(name)-\(Int(Date().timeIntervalSince1970 / 60))\(UUID().uuidString.lowercased().prefix(3))"
        var metadata = cronJob[path: "spec.jobTemplate.metadata"]?.object ?? [:]
        metadata["name"] = .string(jobName)
        metadata["creationTimestamp"] = nil
        metadata["ownerReferences"] = .array([.object(["apiVersion": .string("batch/v1"), "kind": .string("CronJob"), "name": .string(name),
                                                       "uid": cronJob[path: "metadata.uid"] ?? .string(""), "controller": .bool(true),
                                                       "blockOwnerDeletion": .bool(true)])])
        let job: JSONValue = .object(["apiVersion": .string("batch/v1"), "kind": .string("Job"), "metadata": .object(metadata),
                                      "spec": cronJob[path: "spec.jobTemplate.spec"] ?? .object([:])])
        let jobs = locked { resources[Self.resourceID(.jobs)] } ?? Resource(type: .jobs, hasStatus: true)
        guard case .full(201, _, _) = create(jobs, namespace: namespace, body: job, manager: "kube-controller-manager", fromClient: false) else {
            return .failure(TriggerFailure(description: "the Job could not be created"))
        }
        updateStatus(.cronJobs, namespace: namespace, name: name) { status in status["lastScheduleTime"] = .string(Self.now()) }
        return .success(jobName)
    }

    // MARK: Watch

    static func watchLine(_ type: String, _ object: JSONValue) -> String {
        watchLine(type, encoded: [UInt8](object.encoded()))
    }

    /// `{"object":…,"type":"…"}` around an object already written (keys in sorted order, as
    /// every answer here has them).
    static func watchLine(_ type: String, encoded object: [UInt8]) -> String {
        "{\"object\":" + String(decoding: object, as: UTF8.self) + ",\"type\":\"\(type)\"}\n"
    }

    /// Index of the first event newer than `version` (events are in version order): a watch
    /// wakes on every write, and must not rescan the whole history each time.
    private func firstEvent(after version: Int) -> Int {
        var low = 0
        var high = events.count
        while low < high {
            let middle = (low + high) / 2
            if events[middle].version > version { high = middle } else { low = middle + 1 }
        }
        return low
    }

    private func watch(_ resource: Resource, namespace: String?, query: [String: String]) -> LoopbackHTTPServer.Response {
        let selector = LabelSelector(query["labelSelector"] ?? "")
        let bookmarks = query["allowWatchBookmarks"] == "true"
        let timeout = Double(query["timeoutSeconds"].flatMap(Int.init) ?? 1_800)
        let id = Self.resourceID(resource.type)
        let requested = query["resourceVersion"].flatMap { $0.isEmpty ? nil : Int($0) }
        return .stream(status: 200, contentType: "application/json") { [self] write in
            let deadline = Date().addingTimeInterval(timeout)
            let line: (String, JSONValue) -> String = Self.watchLine
            var cursor: Int
            var initial: [String] = []
            condition.lock()
            if let requested, requested != 0 {
                if requested <= compactedThrough {
                    condition.unlock()
                    _ = write(line("ERROR", TestAPIServer.statusObject(410, "Expired", "too old resource version: \(requested) (\(compactedThrough))")))
                    return
                }
                cursor = requested
            } else {
                // No version (or 0): the current state as ADDED events, then changes.
                cursor = resourceVersion
                initial = objects.filter { $0.key.resource == id && (namespace == nil || $0.key.namespace == namespace) && selector.matches($0.value) }
                    .sorted { $0.key.name < $1.key.name }.map { line("ADDED", $0.value) }
            }
            var lastSent = Date()
            let interval = bookmarkInterval
            condition.unlock()
            for text in initial { guard write(text) else { return } }
            while Date() < deadline {
                condition.lock()
                if resourceVersion == cursor { _ = condition.wait(until: min(deadline, Date().addingTimeInterval(0.2))) }
                let newest = resourceVersion
                let batch = events[firstEvent(after: cursor)...].filter { $0.key.resource == id && (namespace == nil || $0.key.namespace == namespace) }
                condition.unlock()
                // Everything up to `newest` is now either in the batch or not for this watch.
                cursor = newest
                for event in batch where selector.matches(labels: event.labels) {
                    guard write(event.line) else { return }
                    lastSent = Date()
                }
                let seconds = interval / .seconds(1)
                if bookmarks, Date().timeIntervalSince(lastSent) >= seconds {
                    let marker: JSONValue = .object(["kind": .string(resource.type.kind), "apiVersion": .string(resource.type.apiVersion),
                                                     "metadata": .object(["resourceVersion": .string("\(cursor)")])])
                    guard write(line("BOOKMARK", marker)) else { return }
                    lastSent = Date()
                }
            }
        }
    }
}

public struct TriggerFailure: Error, CustomStringConvertible {
    public let description: String
}

/// A label selector as the list query takes it: `a=b,c!=d,e,!f`, and the set-based
/// `g in (x,y)`, `h notin (z)` (commas inside parentheses belong to the set).
struct LabelSelector {
    enum Requirement { case equals(String, String), notEquals(String, String), exists(String), absent(String), within(String, Set<String>), outside(String, Set<String>) }
    let requirements: [Requirement]

    init(_ text: String) {
        var clauses: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            if character == "(" { depth += 1 } else if character == ")" { depth -= 1 }
            if character == ",", depth == 0 {
                clauses.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        clauses.append(current)
        requirements = clauses.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { clause in
            for (word, isIn) in [(" notin ", false), (" in ", true)] {
                if let range = clause.range(of: word), let open = clause.firstIndex(of: "("), let close = clause.lastIndex(of: ")") {
                    let key = clause[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                    let values = Set(clause[clause.index(after: open)..<close].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                    return isIn ? .within(key, values) : .outside(key, values)
                }
            }
            if let range = clause.range(of: "!=") { return .notEquals(String(clause[..<range.lowerBound]), String(clause[range.upperBound...])) }
            if let range = clause.range(of: "==") { return .equals(String(clause[..<range.lowerBound]), String(clause[range.upperBound...])) }
            if let range = clause.range(of: "=") { return .equals(String(clause[..<range.lowerBound]), String(clause[range.upperBound...])) }
            if clause.hasPrefix("!") { return .absent(String(clause.dropFirst())) }
            return .exists(clause)
        }
    }

    func matches(_ object: JSONValue) -> Bool {
        matches(labels: object[path: "metadata.labels"])
    }

    func matches(labels: JSONValue?) -> Bool {
        let labels = labels?.object ?? [:]
        return requirements.allSatisfy { requirement in
            switch requirement {
            case let .equals(key, value): labels[key]?.string == value
            case let .notEquals(key, value): labels[key]?.string != value
            case let .exists(key): labels[key] != nil
            case let .absent(key): labels[key] == nil
            case let .within(key, values): labels[key]?.string.map(values.contains) ?? false
            // As labels.Selector: notin matches objects without the key too.
            case let .outside(key, values): !(labels[key]?.string.map(values.contains) ?? false)
            }
        }
    }
}

/// The strategic merge patch kubectl sends for built-in kinds, in the part it uses: lists of
/// objects with a merge key (`name` for containers, env, volumes; `containerPort` for ports)
/// merge element by element instead of being replaced, `$setElementOrder/<list>` orders the
/// result, and `$patch: delete` removes an element. Other `$` directives are dropped.
enum StrategicMerge {
    static let mergeKeys = ["name", "containerPort", "mountPath", "devicePath", "ip", "type"]

    static func apply(_ patch: JSONValue, to base: JSONValue) -> JSONValue {
        guard let changes = patch.object else { return patch }
        var fields = base.object ?? [:]
        for (key, change) in changes where !key.hasPrefix("$") {
            if change == .null {
                fields[key] = nil
            } else if let items = change.array, let existing = fields[key]?.array, let mergeKey = mergeKey(of: items + existing) {
                let order = changes["$setElementOrder/\(key)"]?.array?.compactMap { $0[mergeKey] }
                fields[key] = .array(merge(existing, items, on: mergeKey, order: order))
            } else if change.object != nil, let current = fields[key], current.object != nil {
                fields[key] = apply(change, to: current)
            } else {
                fields[key] = change
            }
        }
        return .object(fields)
    }

    /// The merge key every element has, when the list is one of objects keyed that way.
    static func mergeKey(of items: [JSONValue]) -> String? {
        guard !items.isEmpty, items.allSatisfy({ $0.object != nil }) else { return nil }
        return mergeKeys.first { key in items.allSatisfy { $0[key] != nil } }
    }

    static func merge(_ base: [JSONValue], _ patch: [JSONValue], on key: String, order: [JSONValue]?) -> [JSONValue] {
        var result = base
        for item in patch {
            let index = result.firstIndex { $0[key] == item[key] }
            if item["$patch"]?.string == "delete" {
                if let index { result.remove(at: index) }
            } else if let index {
                result[index] = apply(item, to: result[index])
            } else {
                result.append(apply(item, to: .object([:])))
            }
        }
        guard let order else { return result }
        return order.compactMap { wanted in result.first { $0[key] == wanted } } + result.filter { item in !order.contains { $0 == item[key] } }
    }
}

/// RFC 6902 operations: add, remove, replace, test (what controllers send).
enum JSONPatch {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func apply(_ operations: [JSONValue], to document: JSONValue) throws -> JSONValue {
        var result = document
        for operation in operations {
            guard let op = operation["op"]?.string, let path = operation["path"]?.string else { throw Failure(description: "an operation needs op and path") }
            let tokens = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
                .map { $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~") }
            switch op {
            case "test":
                guard value(at: tokens, in: result) == operation["value"] else { throw Failure(description: "test failed at \(path)") }
            case "add", "replace":
                guard let value = operation["value"] else { throw Failure(description: "\(op) needs a value") }
                if op == "replace", self.value(at: tokens, in: result) == nil { throw Failure(description: "nothing to replace at \(path)") }
                result = try set(value, at: tokens[...], in: result)
            case "remove":
                guard self.value(at: tokens, in: result) != nil else { throw Failure(description: "nothing to remove at \(path)") }
                result = try set(nil, at: tokens[...], in: result)
            default:
                throw Failure(description: "unsupported op \(op)")
            }
        }
        return result
    }

    static func value(at tokens: [String], in document: JSONValue) -> JSONValue? {
        tokens.reduce(Optional(document)) { current, token in
            guard let current else { return nil }
            if let array = current.array { return Int(token).flatMap { array.indices.contains($0) ? array[$0] : nil } }
            return current[token]
        }
    }

    static func set(_ value: JSONValue?, at tokens: ArraySlice<String>, in document: JSONValue) throws -> JSONValue {
        guard let token = tokens.first else { return value ?? .null }
        if var array = document.array {
            if tokens.count == 1 {
                if token == "-" { if let value { array.append(value) }; return .array(array) }
                guard let index = Int(token), index <= array.count else { throw Failure(description: "bad index \(token)") }
                if let value { if index == array.count { array.append(value) } else { array[index] = value } } else { array.remove(at: index) }
                return .array(array)
            }
            guard let index = Int(token), array.indices.contains(index) else { throw Failure(description: "bad index \(token)") }
            array[index] = try set(value, at: tokens.dropFirst(), in: array[index])
            return .array(array)
        }
        var fields = document.object ?? [:]
        if tokens.count == 1 {
            fields[token] = value
        } else {
            guard let child = fields[token] else { throw Failure(description: "no \(token) on the way") }
            fields[token] = try set(value, at: tokens.dropFirst(), in: child)
        }
        return .object(fields)
    }
}
