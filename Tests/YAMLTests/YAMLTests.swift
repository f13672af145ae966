import Testing
import YAML

@Suite("YAML")
struct YAMLTests {
    struct Config: Decodable, Equatable {
        struct Item: Decodable, Equatable {
            let name: String
            let port: Int?
            let enabled: Bool?
        }
        let kind: String
        let items: [Item]
        let labels: [String: String]?
    }

    @Test("decodes mappings, lists, numbers, booleans, quoted strings and anchors")
    func decodes() throws {
        let text = """
            kind: Config   # a comment
            base: &base {name: shared, port: 5432}
            items:
              - *base
              - name: "1234"
                enabled: true
              - {name: 'quoted: yes', port: 16}
            labels:
              app: backstop
              version: "2"
            """
        let config = try YAMLDecoder().decode(Config.self, from: text)
        #expect(config == Config(kind: "Config", items: [
            .init(name: "shared", port: 5432, enabled: nil),
            .init(name: "1234", port: nil, enabled: true),
            .init(name: "quoted: yes", port: 16, enabled: nil),
        ], labels: ["app": "backstop", "version": "2"]))
    }

    @Test("errors name the source, the field path and the problem")
    func errors() {
        do {
            _ = try YAMLDecoder().decode(Config.self, from: "kind: C\nitems:\n  - name: a\n    port: many\n", source: "demo.yaml")
            Issue.record("a bad number was accepted")
        } catch {
            #expect(error.source == "demo.yaml")
            #expect(error.path == "items[0].port")
            #expect(error.problem.contains("number"))
        }
        do {
            _ = try YAMLDecoder().decode(Config.self, from: "items: []\n", source: "demo.yaml")
            Issue.record("a missing field was accepted")
        } catch {
            #expect(error.description.contains("kind"))
        }
        do {
            _ = try YAMLNode.parse("a: [1, 2\nb: c", source: "broken.yaml")
            Issue.record("malformed YAML was accepted")
        } catch {
            #expect(error.description.hasPrefix("broken.yaml: "))
            #expect(error.description.contains("line"))
        }
    }

    @Test("null, empty documents and block scalars")
    func scalars() throws {
        #expect(try YAMLNode.parse("") == .null)
        let node = try YAMLNode.parse("a: ~\nb: |\n  line one\n  line two\nc: null\nd: 'null'\n")
        #expect(node["a"] == .null)
        #expect(node["b"]?.string == "line one\nline two\n")
        #expect(node["c"] == .null)
        #expect(node["d"]?.string == "null")
    }
}
