/// A type written straight into a `JSONValue`, the counterpart of `JSONValueDecodable`: for
/// what the controller encodes thousands of times (a CronJob per environment on every pass),
/// `Encodable`'s generic containers cost more than the work. `JSONValueEncoder` uses this form
/// when a type offers it; a type that offers both has a test that they agree.
public protocol JSONValueEncodable {
    var jsonValue: JSONValue { get }
}

extension JSONValue {
    /// An object of the given fields, nil ones left out (as `JSONEncoder` leaves out nil
    /// optionals).
    public static func fields(_ fields: KeyValuePairs<String, JSONValue?>) -> JSONValue {
        var object: [String: JSONValue] = [:]
        for case (let key, let value?) in fields { object[key] = value }
        return .object(object)
    }
}

extension JSONValue: JSONValueEncodable {
    public var jsonValue: JSONValue { self }
}

extension String: JSONValueEncodable {
    public var jsonValue: JSONValue { .string(self) }
}

extension Bool: JSONValueEncodable {
    public var jsonValue: JSONValue { .bool(self) }
}

extension Int: JSONValueEncodable {
    public var jsonValue: JSONValue { .number(Double(self)) }
}

// Closures, not key paths: a generic key path is projected through the runtime, which cost
// as much as building the values.
extension Array: JSONValueEncodable where Element: JSONValueEncodable {
    public var jsonValue: JSONValue { .array(map { $0.jsonValue }) }
}

extension Dictionary: JSONValueEncodable where Key == String, Value: JSONValueEncodable {
    public var jsonValue: JSONValue { .object(mapValues { $0.jsonValue }) }
}

extension ObjectMeta: JSONValueEncodable {
    public var jsonValue: JSONValue {
        .fields([
            "name": name.jsonValue, "namespace": namespace?.jsonValue, "uid": uid?.jsonValue,
            "resourceVersion": resourceVersion?.jsonValue, "generation": generation?.jsonValue,
            "labels": labels?.jsonValue, "annotations": annotations?.jsonValue, "finalizers": finalizers?.jsonValue,
            "ownerReferences": ownerReferences?.jsonValue, "creationTimestamp": creationTimestamp?.jsonValue,
            "deletionTimestamp": deletionTimestamp?.jsonValue, "generateName": generateName?.jsonValue,
            // Read from the server, never written by the controller: the rare case takes the
            // generic path.
            "managedFields": managedFields.map { (try? JSONValueEncoder().encode($0)) ?? .null },
        ])
    }
}

extension OwnerReference: JSONValueEncodable {
    public var jsonValue: JSONValue {
        .fields([
            "apiVersion": apiVersion.jsonValue, "kind": kind.jsonValue, "name": name.jsonValue, "uid": uid.jsonValue,
            "controller": controller?.jsonValue, "blockOwnerDeletion": blockOwnerDeletion?.jsonValue,
        ])
    }
}
