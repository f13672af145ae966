import Foundation
import KubeObjects
import Testing

/// The JSON reader, writer and value encoder the client and the test server use instead of
/// Foundation's (for speed), checked against Foundation's.
@Suite("JSON parsing, writing and encoding")
struct JSONTests {
    @Test("parses what JSONSerialization parses, escapes and surrogate pairs included, and writes it back the same")
    func roundTrip() throws {
        let text = #"{"a":[1,-2.5,3e2,0,true,false,null],"s":"quote \" slash \\ \/ tab \t nl \n u \u00e9 pair \ud83d\ude00 ctl \u0001","n":{"x":{}},"e":[]}"#
        let value = try JSONValue.decode(Data(text.utf8))
        #expect(value["a"] == [1, -2.5, 300, 0, true, false, .null])
        #expect(value["s"]?.string == "quote \" slash \\ / tab \t nl \n u é pair 😀 ctl \u{01}")
        #expect(value[path: "n.x"] == .object([:]) && value["e"] == .array([]))
        let written = value.encoded()
        #expect(try JSONValue.decode(written) == value)
        // Foundation reads what we write, to the same values.
        let foundation = try JSONSerialization.jsonObject(with: written) as? [String: Any]
        #expect(foundation?["s"] as? String == value["s"]?.string)
        #expect(String(decoding: JSONValue.object(["b": 1, "a": "x/y"]).encoded(), as: UTF8.self) == #"{"a":"x/y","b":1}"#, "keys sorted, slashes kept")
    }

    @Test("refuses what is not JSON", arguments: ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", ".5", "+1", "\"\\x\"", "\"\\ud83d\"", "nul", "[1] x", "\"a\u{01}\""])
    func refuses(_ text: String) {
        #expect(throws: (any Error).self) { _ = try JSONValue.decode(Data(text.utf8)) }
    }

    @Test("fields named to be skipped are scanned over, not built; * matches any key or element")
    func skipping() throws {
        let text = #"{"metadata":{"name":"a","managedFields":[{"x":"}]\"{"}]},"spec":{"deep":[{"a":[1,{"b":"]"}]}]},"items":[{"spec":1,"keep":2}]}"#
        let value = try JSONValue.decode(Data(text.utf8), skipping: [["spec"], ["metadata", "managedFields"], ["items", "*", "spec"]])
        #expect(value == ["metadata": ["name": "a"], "items": [["keep": 2]]])
        #expect(try JSONValue.decode(Data(text.utf8), skipping: [["*"]]) == .object([:]))
    }

    @Test("the value encoder gives what JSONEncoder gives")
    func encoder() throws {
        struct Sample: Encodable {
            var name = "n"
            var count = 3
            var ratio = 0.25
            var flag = true
            var missing: String?
            var list = ["a", "b"]
            var nested = ["k": [1, 2]]
            var value: JSONValue = ["x": .null]
        }
        let ours = try JSONValueEncoder().encode(Sample())
        let theirs = try JSONValue.decode(JSONEncoder().encode(Sample()))
        #expect(ours == theirs)
        #expect(ours["missing"] == nil, "nil optionals are left out")
    }
}
