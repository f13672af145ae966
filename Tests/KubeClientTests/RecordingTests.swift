import Foundation
import KubeClient
import KubeObjects
import KubeTestServer
import Testing
import HTTP

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
                let contentType: String?
                let userAgent: String?
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

    /// Sends a recorded request as it was sent (method, path and query, content type, user
    /// agent, the body's exact text for YAML) and returns the status and body.
    static func replay(_ request: Recording.Exchange.Request, on server: TestAPIServer) async throws -> (status: Int, body: JSONValue?) {
        var headers = [HTTPHeader("Accept", "application/json"), HTTPHeader("Authorization", "Bearer \(server.token)")]
        if let agent = request.userAgent { headers.append(HTTPHeader("User-Agent", agent)) }
        var body: [UInt8] = []
        if let contentType = request.contentType, let sent = request.body {
            headers.append(HTTPHeader("Content-Type", contentType))
            body = sent.string.map { Array($0.utf8) } ?? [UInt8](sent.encoded())
        }
        let response = try await HTTPClient().send(HTTPRequest(method: request.method, url: server.url + request.path, headers: headers, body: body))
        return (response.status, try? JSONValue.decode(Data(response.body)))
    }

    /// What two answers must share: everything but identity, versions and times, and the
    /// object's own uid wherever it appears (a Job's selector names it). managedFields are
    /// compared apart, by `managedFields(_:)`.
    static func comparable(_ value: JSONValue) -> JSONValue {
        let uid = value[path: "metadata.uid"]?.string
        func walk(_ node: JSONValue) -> JSONValue {
            switch node {
            case .object(let fields): return .object(fields.mapValues(walk))
            case .array(let items): return .array(items.map(walk))
            case .string(let text) where text == uid: return "<uid>"
            default: return node
            }
        }
        var copy = walk(value)
        for field in ["uid", "resourceVersion", "creationTimestamp", "managedFields"] { copy["metadata"]?[field] = nil }
        return copy
    }

    /// managedFields as the comparison takes them: Apply entries exactly (they list the
    /// applied fields, no `"."` for maps); Update entries by the leaf fields they own (the
    /// test server leaves out the `"."` markers the real one writes for maps; see its README).
    static func managedFields(_ value: JSONValue) -> [String] {
        (value[path: "metadata.managedFields"]?.array ?? []).map { entry in
            let head = "\(entry["manager"]?.string ?? "")/\(entry["operation"]?.string ?? "")/\(entry["subresource"]?.string ?? "")"
            let fields = entry["fieldsV1"] ?? .object([:])
            if entry["operation"] == "Apply" { return head + " " + String(decoding: fields.encoded(), as: UTF8.self) }
            let members = FieldSet(fieldsV1: fields).members
            let leaves = members.filter { path in !members.contains { $0.count > path.count && Array($0.prefix(path.count)) == path } }
            return head + " " + leaves.map { $0.joined(separator: ".") }.sorted().joined(separator: " ")
        }.sorted()
    }

    /// Replays recordings in order against one server and compares every answer.
    static func expectSameAnswers(_ files: [String], on server: TestAPIServer) async throws {
        for file in files {
            for (index, exchange) in try load(file).exchanges.enumerated() {
                let what = "\(file) #\(index): \(exchange.request.method) \(exchange.request.path)"
                let (status, body) = try await replay(exchange.request, on: server)
                #expect(status == exchange.response.status, "\(what): \(status), the real server \(exchange.response.status): \(body.map { String(decoding: $0.encoded(), as: UTF8.self) } ?? "")")
                guard let expected = exchange.response.body, let body else { continue }
                if expected["kind"] == "Status" {
                    #expect(body["message"] == expected["message"] && body["reason"] == expected["reason"] && body["details"] == expected["details"],
                            "\(what): \(String(decoding: body.encoded(), as: UTF8.self))")
                    continue
                }
                let ours = comparable(body), theirs = comparable(expected)
                #expect(ours == theirs, "\(what): the stored object differs:\n ours \(String(decoding: ours.encoded(), as: UTF8.self))\n real \(String(decoding: theirs.encoded(), as: UTF8.self))")
                let ourFields = Set(managedFields(body).flatMap { $0.split(separator: " ").map(String.init) })
                let realFields = Set(managedFields(expected).flatMap { $0.split(separator: " ").map(String.init) })
                #expect(managedFields(body) == managedFields(expected),
                        "\(what): managedFields differ: only ours \(ourFields.subtracting(realFields).sorted()), only the real server's \(realFields.subtracting(ourFields).sorted())")
            }
        }
    }

    @Test("built-in defaults, canonical quantities and a v1.24 server's dropped timeZone on create (00, 01, 02)")
    func defaults() async throws {
        let server = try TestAPIServer(version: .v1_24)
        defer { server.stop() }
        try await Self.expectSameAnswers(["00-namespace-create.json", "01-cronjob-create-get.json", "02-job-create-get.json"], on: server)
    }

    @Test("server-side apply: field managers, removal of unapplied fields, 409 conflicts, force, a v1.24 server's 500 for timeZone (03a–03f)")
    func serverSideApply() async throws {
        let server = try TestAPIServer(version: .v1_24)
        defer { server.stop() }
        try await Self.expectSameAnswers(["03a-ssa-apply-configmap.json", "03b-ssa-apply-cronjob.json", "03c-ssa-reapply-label-removed.json",
                                          "03d-ssa-conflict-409.json", "03e-ssa-force.json", "03f-ssa-merge-patch-label-survives.json"], on: server)
    }

    @Test("/version as the emulated release (08a)")
    func version() async throws {
        let server = try TestAPIServer(version: .v1_24)
        defer { server.stop() }
        let expected = try #require(try Self.load("08a-version.json").exchanges.first?.response.body)
        let (status, body) = try await Self.replay(try #require(try Self.load("08a-version.json").exchanges.first?.request), on: server)
        #expect(status == 200)
        for field in ["major", "minor", "gitVersion"] { #expect(body?[field] == expected[field], "\(field)") }
    }
}
