import Foundation
import KubeClient
import KubeObjects
import KubeTestServer
import Testing

/// Exchanges recorded from a real kube-apiserver (v1.24; see Recordings/ and the recordings'
/// README), replayed against the test server: the same requests must get the same statuses,
/// messages and stored objects, or tests against the test server prove nothing.
@Suite("The test API server answers as the recorded kube-apiserver")
struct RecordingTests {
    struct Recording: Decodable {
        struct Exchange: Decodable {
            struct Request: Decodable {
                let method: String
                let path: String
                let body: JSONValue?
            }
            struct Response: Decodable {
                let status: Int
                let body: JSONValue?
            }
            let request: Request
            let response: Response
        }
        let scenario: String
        let exchanges: [Exchange]
    }

    static func load(_ name: String) throws -> Recording {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Recordings/\(name)")
        return try JSONDecoder().decode(Recording.self, from: Data(contentsOf: url))
    }

    /// A keep rule needs `minProperties: 1` (a CEL `size(self)` does not compile on a real
    /// server): `{}` is refused with the real wording, and unknown fields are pruned before
    /// the count, so `{unknownField: 1}` is empty too.
    @Test("minProperties: the CRD is accepted, an empty object refused, unknown fields pruned (04b)")
    func minProperties() async throws {
        let recording = try Self.load("04b-crd-minproperties-accepted.json")
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(connection: server.connection(namespace: "rec"))
        let settings = ResourceType(group: "rec.example.com", version: "v1", plural: "settings", kind: "Setting", namespaced: true)
        for exchange in recording.exchanges {
            let body = try #require(exchange.request.body)
            let type: ResourceType = exchange.request.path.contains("customresourcedefinitions") ? .customResourceDefinitions : settings
            do {
                let created: JSONValue = try await client.create(type, body)
                #expect(exchange.response.status == 201, "\(exchange.request.path): created, but the real server answered \(exchange.response.status)")
                if type == settings {
                    #expect(created["spec"] == exchange.response.body?["spec"], "the stored spec, unknown fields pruned")
                }
            } catch {
                #expect(error.code == exchange.response.status)
                let expected = try #require(exchange.response.body?["message"]?.string)
                #expect(error.message.hasSuffix(": " + expected), "the real server's words: \(error.message)")
            }
        }
        // Pruned first, then counted: only unknown fields is no field.
        do {
            let _: JSONValue = try await client.create(settings, .object([
                "apiVersion": "rec.example.com/v1", "kind": "Setting", "metadata": .object(["name": "unknown-only"]),
                "spec": .object(["unknownField": .number(1)]),
            ]))
            Issue.record("an object with only unknown fields was accepted")
        } catch {
            #expect(error.message.hasSuffix("spec: Invalid value: 1: spec in body should have at least 1 properties"))
        }
    }
}
