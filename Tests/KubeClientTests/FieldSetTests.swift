import KubeObjects
import Testing

/// `FieldSet` keeps its members as a tree; its set algebra must be that of a plain set of
/// paths, which is what server-side apply's ownership rules are written in.
@Suite("Field sets (managedFields ownership)")
struct FieldSetTests {
    /// A reproducible stream of numbers (SplitMix64), so a failure can be replayed.
    struct Numbers {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9e37_79b9_7f4a_7c15
            var value = state
            value = (value ^ (value >> 30)) &* 0xbf58_476d_1ce4_e5b9
            value = (value ^ (value >> 27)) &* 0x94d0_49bb_1331_11eb
            return Int((value ^ (value >> 31)) % UInt64(bound))
        }
    }

    static let segments = ["f:spec", "f:template", "f:containers", #"k:{"name":"worker"}"#, #"k:{"name":"side"}"#, "f:image", #"v:"x""#, "."]

    static func paths(_ numbers: inout Numbers, count: Int) -> Set<FieldSet.Path> {
        var paths: Set<FieldSet.Path> = []
        for _ in 0..<count {
            let depth = 1 + numbers.next(4)
            // "." is never a segment of a member: FieldsV1 uses it to mark one.
            paths.insert((0..<depth).map { _ in segments[numbers.next(segments.count - 1)] })
        }
        return paths
    }

    @Test("union, subtraction, intersection, subset and membership agree with a set of paths", arguments: 0..<50)
    func algebra(seed: UInt64) {
        var numbers = Numbers(state: seed)
        let left = Self.paths(&numbers, count: numbers.next(12))
        let right = Self.paths(&numbers, count: numbers.next(12))
        let a = FieldSet(members: left), b = FieldSet(members: right)
        #expect(a.members == left)
        #expect(a.union(b).members == left.union(right))
        #expect(a.subtracting(b).members == left.subtracting(right))
        #expect(a.intersection(b).members == left.intersection(right))
        #expect(a.isSubset(of: b) == left.isSubset(of: right))
        #expect(a.union(b).isSubset(of: b.union(a)) && b.isSubset(of: a.union(b)))
        #expect(a.isEmpty == left.isEmpty)
        // Equal sets built in different orders are equal, and hash equally in every process.
        #expect(a.union(b) == b.union(a) && a.union(b).stableHash == b.union(a).stableHash)
        #expect(a.subtracting(b).union(a.intersection(b)) == a)
        for path in left.union(right) {
            #expect(a.contains(path) == left.contains(path))
            #expect(a.contains(Array(path.dropLast())) == left.contains(Array(path.dropLast())))
        }
        if let member = left.first {
            #expect(a.subtracting(FieldSet(members: [member])).stableHash != a.stableHash, "one member less, another hash")
        }
    }

    @Test("an applied object's fields: leaves, list elements by key, set values, atomic lists and structs; identity and nulls are not fields")
    func applying() {
        let object: JSONValue = [
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": ["name": "a", "namespace": "n", "labels": ["x": "1"], "finalizers": ["b", "c"], "annotations": [:]],
            "spec": [
                "schedule": "5 * * * *", "suspend": .null,
                "containers": [["name": "worker", "image": "i", "args": ["backup"], "env": [["name": "A", "valueFrom": ["secretKeyRef": ["name": "s", "key": "k"]]]]]],
            ],
        ]
        let fields = FieldSet(applying: object)
        let worker = #"k:{"name":"worker"}"#
        #expect(fields.members == [
            ["f:metadata", "f:labels", "f:x"], ["f:metadata", "f:finalizers", #"v:"b""#], ["f:metadata", "f:finalizers", #"v:"c""#],
            ["f:metadata", "f:annotations"], ["f:spec", "f:schedule"],
            ["f:spec", "f:containers", worker], ["f:spec", "f:containers", worker, "f:name"], ["f:spec", "f:containers", worker, "f:image"],
            ["f:spec", "f:containers", worker, "f:args"],
            ["f:spec", "f:containers", worker, "f:env", #"k:{"name":"A"}"#], ["f:spec", "f:containers", worker, "f:env", #"k:{"name":"A"}"#, "f:name"],
            ["f:spec", "f:containers", worker, "f:env", #"k:{"name":"A"}"#, "f:valueFrom", "f:secretKeyRef"],
        ])
        // The FieldsV1 tree marks elements with children by "." and reads back to the same set.
        let tree = fields.fieldsV1
        #expect(tree[path: "f:spec"]?["f:containers"]?[worker]?["."] == .object([:]))
        #expect(tree[path: "f:metadata"]?["f:finalizers"]?[#"v:"b""#] == .object([:]))
        #expect(FieldSet(fieldsV1: tree) == fields)
        #expect(FieldSet.stableHash(ofFieldsV1: tree) == fields.stableHash)
        #expect(FieldSet(members: fields.members).stableHash == fields.stableHash)
        // A value that is not an object holds no member (FieldsV1 never has one).
        #expect(FieldSet(fieldsV1: ["f:a": ["f:b": 5], "f:c": [:]]) == FieldSet(members: [["f:c"]]))
    }
}
