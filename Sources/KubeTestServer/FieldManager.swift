internal import Foundation
internal import KubeObjects

/// Field ownership as the API server keeps it in `metadata.managedFields`, and server-side
/// apply on top of it (structured-merge-diff, in the part controllers meet; recordings 03a–03f):
///
/// - an apply records exactly the fields of its configuration as its manager's `Apply` entry;
/// - a field another manager owns with a different value is a conflict (409, the real wording)
///   unless forced, and forcing moves its ownership;
/// - fields a manager applied before and no longer applies are removed, unless someone else
///   owns them too;
/// - maps and associative lists merge, atomic lists and scalars are replaced;
/// - creates, updates and patches record the fields they changed in an `Update` entry of their
///   manager, taking them from whoever owned them before.
///
/// Not modelled: the `"."` entries an `Update` entry has for maps and structs (only list
/// elements carry them here), and per-version field conversion.
struct FieldManager {
    struct Entry {
        var manager: String
        var operation: String
        var subresource: String?
        var apiVersion: String
        var time: String
        var fields: FieldSet {
            didSet { if fields != oldValue { stored = nil } }
        }
        /// The `fieldsV1` tree as stored, while `fields` is unchanged: written back as it was
        /// instead of being rebuilt on every write.
        var stored: JSONValue?

        init(manager: String, operation: String, subresource: String?, apiVersion: String, time: String, fields: FieldSet, stored: JSONValue? = nil) {
            self.manager = manager
            self.operation = operation
            self.subresource = subresource
            self.apiVersion = apiVersion
            self.time = time
            self.fields = fields
            self.stored = stored
        }
    }

    struct Conflict: Error {
        let conflicts: [(manager: String, path: FieldSet.Path)]

        /// `Apply failed with 1 conflict: conflict with "backstop": .data.retention` (03d).
        var status: JSONValue {
            let causes: [JSONValue] = conflicts.map {
                ["reason": "FieldManagerConflict", "message": .string("conflict with \"\($0.manager)\""), "field": .string(FieldSet.describe($0.path))]
            }
            let message: String
            if conflicts.count == 1, let only = conflicts.first {
                message = "Apply failed with 1 conflict: conflict with \"\(only.manager)\": \(FieldSet.describe(only.path))"
            } else {
                let byManager = Dictionary(grouping: conflicts, by: \.manager)
                message = "Apply failed with \(conflicts.count) conflicts: " + byManager.keys.sorted().map { manager in
                    "conflicts with \"\(manager)\":\n" + (byManager[manager] ?? []).map { "- \(FieldSet.describe($0.path))" }.sorted().joined(separator: "\n")
                }.joined(separator: "\n")
            }
            return ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Failure", "message": .string(message),
                    "reason": "Conflict", "details": ["causes": .array(causes)], "code": 409]
        }
    }

    let lists: ListTypes
    let apiVersion: String
    let now: String

    // MARK: managedFields in and out

    static func entries(of object: JSONValue?) -> [Entry] {
        (object?[path: "metadata.managedFields"]?.array ?? []).compactMap { entry in
            guard let manager = entry["manager"]?.string, let operation = entry["operation"]?.string else { return nil }
            return Entry(manager: manager, operation: operation, subresource: entry["subresource"]?.string,
                         apiVersion: entry["apiVersion"]?.string ?? "", time: entry["time"]?.string ?? "",
                         fields: FieldSet(fieldsV1: entry["fieldsV1"] ?? .object([:])), stored: entry["fieldsV1"])
        }
    }

    static func store(_ entries: [Entry], in object: inout JSONValue) {
        let kept = entries.filter { !$0.fields.isEmpty }
        guard !kept.isEmpty else {
            object["metadata"]?["managedFields"] = nil
            return
        }
        object["metadata"]?["managedFields"] = .array(kept.map { entry in
            var fields: [String: JSONValue] = [
                "manager": .string(entry.manager), "operation": .string(entry.operation), "apiVersion": .string(entry.apiVersion),
                "time": .string(entry.time), "fieldsType": "FieldsV1", "fieldsV1": entry.stored ?? entry.fields.fieldsV1,
            ]
            if let subresource = entry.subresource { fields["subresource"] = .string(subresource) }
            return .object(fields)
        })
    }

    /// What counts as a field: the object without its identity and what the server keeps.
    static func fields(of object: JSONValue, subresource: String?, lists: ListTypes) -> FieldSet {
        if subresource == "status" {
            return FieldSet(applying: .object(["status": object["status"] ?? .object([:])]), lists: lists)
        }
        var copy = object
        copy["status"] = nil
        var metadata = object["metadata"]?.object ?? [:]
        for field in ["uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "managedFields", "selfLink", "generateName", "deletionGracePeriodSeconds"] {
            metadata[field] = nil
        }
        copy["metadata"] = .object(metadata)
        return FieldSet(applying: copy, lists: lists)
    }

    // MARK: Apply

    /// Server-side apply of `config` by `manager` onto `current` (nil: a create). Returns the
    /// merged object with its managedFields, before defaulting and validation.
    func apply(_ config: JSONValue, to current: JSONValue?, manager: String, force: Bool,
               canonical: (JSONValue) -> JSONValue) throws(Conflict) -> JSONValue {
        var config = config
        config["status"] = nil  // the status is another subresource's
        let applied = FieldSet(applying: config, lists: lists)
        var entries = Self.entries(of: current)
        if let current {
            // Only leaves can disagree: an element of an associative list is owned as a place.
            let comparable = canonical(config)
            var conflicts: [(String, FieldSet.Path)] = []
            for entry in entries where entry.subresource == nil && !(entry.manager == manager && entry.operation == "Apply") {
                for path in applied.intersection(entry.fields).members where !Self.isElement(path) {
                    if Self.value(at: path, in: current) != Self.value(at: path, in: comparable) {
                        conflicts.append((entry.manager, path))
                    }
                }
            }
            if !conflicts.isEmpty {
                guard force else { throw Conflict(conflicts: conflicts.sorted { $0.1.joined() < $1.1.joined() }) }
                let taken = FieldSet(members: Set(conflicts.map(\.1)))
                for index in entries.indices where entries[index].subresource == nil { entries[index].fields = entries[index].fields.subtracting(taken) }
            }
        }
        let mine = entries.firstIndex { $0.manager == manager && $0.operation == "Apply" && $0.subresource == nil }
        let previous = mine.map { entries[$0].fields } ?? FieldSet()
        var merged = Self.merge(config, into: current ?? .object([:]), lists: lists, path: [])
        // What this manager stops applying goes, unless another manager still owns it.
        let othersOwn = entries.enumerated().filter { $0.offset != mine && $0.element.subresource == nil }
            .reduce(FieldSet()) { $0.union($1.element.fields) }
        for path in previous.subtracting(applied).subtracting(othersOwn).members.sorted(by: { $0.count > $1.count }) {
            merged = Self.removing(path[...], from: merged)
        }
        let entry = Entry(manager: manager, operation: "Apply", subresource: nil, apiVersion: apiVersion, time: now, fields: applied)
        if let mine { entries[mine] = entry } else { entries.append(entry) }
        Self.store(entries, in: &merged)
        return merged
    }

    // MARK: Update (create, replace, patch)

    /// Records an update by `manager`: the fields it added or changed become its own (taken
    /// from their earlier owners); fields it removed are nobody's.
    func update(from old: JSONValue?, to new: JSONValue, manager: String, subresource: String?) -> JSONValue {
        var entries = Self.entries(of: old)
        let before = old.map { Self.fields(of: $0, subresource: subresource, lists: lists) } ?? FieldSet()
        let after = Self.fields(of: new, subresource: subresource, lists: lists)
        let changed = FieldSet(members: after.members.filter { path in
            !before.contains(path) || (!Self.isElement(path) && Self.value(at: path, in: old ?? .null) != Self.value(at: path, in: new))
        })
        let removed = before.subtracting(after)
        for index in entries.indices where entries[index].subresource == subresource {
            entries[index].fields = entries[index].fields.subtracting(changed).subtracting(removed)
        }
        if let mine = entries.firstIndex(where: { $0.manager == manager && $0.operation == "Update" && $0.subresource == subresource }) {
            entries[mine].fields = entries[mine].fields.union(changed)
            entries[mine].time = now
        } else if !changed.isEmpty {
            entries.append(Entry(manager: manager, operation: "Update", subresource: subresource, apiVersion: apiVersion, time: now, fields: changed))
        }
        var result = new
        Self.store(entries, in: &result)
        return result
    }

    // MARK: Paths in objects

    static func isElement(_ path: FieldSet.Path) -> Bool {
        path.last.map { $0.hasPrefix("k:") || $0.hasPrefix("v:") } ?? false
    }

    /// The value a path names; nil when absent.
    static func value(at path: FieldSet.Path, in object: JSONValue) -> JSONValue? {
        var current: JSONValue? = object
        for segment in path {
            guard let node = current else { return nil }
            if segment.hasPrefix("f:") {
                current = node[String(segment.dropFirst(2))]
            } else if segment.hasPrefix("k:"), let key = try? JSONValue.decode(Data(segment.dropFirst(2).utf8)), let fields = key.object {
                current = node.array?.first { item in fields.allSatisfy { item[$0.key] == $0.value } }
            } else if segment.hasPrefix("v:"), let value = try? JSONValue.decode(Data(segment.dropFirst(2).utf8)) {
                current = node.array?.first { $0 == value }
            } else {
                return nil
            }
        }
        return current
    }

    static func removing(_ path: ArraySlice<String>, from object: JSONValue) -> JSONValue {
        guard let segment = path.first else { return object }
        if segment.hasPrefix("f:") {
            let name = String(segment.dropFirst(2))
            var result = object
            if path.count == 1 {
                result[name] = nil
            } else if let child = object[name] {
                result[name] = removing(path.dropFirst(), from: child)
            }
            return result
        }
        guard var items = object.array else { return object }
        let matches: (JSONValue) -> Bool
        if segment.hasPrefix("k:"), let key = try? JSONValue.decode(Data(segment.dropFirst(2).utf8)), let fields = key.object {
            matches = { item in fields.allSatisfy { item[$0.key] == $0.value } }
        } else if segment.hasPrefix("v:"), let value = try? JSONValue.decode(Data(segment.dropFirst(2).utf8)) {
            matches = { $0 == value }
        } else {
            return object
        }
        guard let index = items.firstIndex(where: matches) else { return object }
        if path.count == 1 { items.remove(at: index) } else { items[index] = removing(path.dropFirst(), from: items[index]) }
        return .array(items)
    }

    /// Applies a configuration onto an object: maps merge key by key, associative lists element
    /// by element (new elements appended), everything else is replaced.
    static func merge(_ config: JSONValue, into base: JSONValue, lists: ListTypes, path: [String]) -> JSONValue {
        switch config {
        case .object(let fields):
            guard var result = base.object, !lists.isAtomicStruct(path) else { return config }
            for (key, value) in fields {
                result[key] = value == .null ? nil : merge(value, into: result[key] ?? .null, lists: lists, path: path + [key])
            }
            return .object(result)
        case .array(let items):
            guard case .map(let keys) = lists.type(of: path), var result = base.array else {
                if case .set = lists.type(of: path), let existing = base.array {
                    return .array(existing + items.filter { !existing.contains($0) })
                }
                return config
            }
            for item in items {
                if let index = result.firstIndex(where: { existing in keys.allSatisfy { existing[$0] == item[$0] } }) {
                    result[index] = merge(item, into: result[index], lists: lists, path: path)
                } else {
                    result.append(item)
                }
            }
            return .array(result)
        default:
            return config
        }
    }
}
