import Foundation
import KubeClient
import KubeObjects
import KubeTestServer
import Testing

/// A BackupPolicy as the client sees it: typed metadata, the rest kept as JSON.
struct Policy: Codable, Sendable, Equatable {
    struct Metadata: Codable, Sendable, Equatable {
        var name: String
        var namespace: String?
        var resourceVersion: String?
        var generation: Int?
        var labels: [String: String]?
        var finalizers: [String]?
        var deletionTimestamp: String?
        var uid: String?
        var ownerReferences: [JSONValue]?
    }
    var apiVersion = "backstop.dev/v1alpha1"
    var kind = "BackupPolicy"
    var metadata: Metadata
    var spec: JSONValue?
    var status: JSONValue?
}

@Suite("Kubernetes client against the test API server")
struct APIServerTests {
    static let crd: JSONValue = .object([
        "apiVersion": .string("apiextensions.k8s.io/v1"), "kind": .string("CustomResourceDefinition"),
        "metadata": .object(["name": .string("backuppolicies.backstop.dev")]),
        "spec": .object([
            "group": .string("backstop.dev"), "scope": .string("Namespaced"),
            "names": .object(["plural": .string("backuppolicies"), "kind": .string("BackupPolicy"), "singular": .string("backuppolicy")]),
            "versions": .array([.object(["name": .string("v1alpha1"), "served": .bool(true), "storage": .bool(true),
                                         "subresources": .object(["status": .object([:])])])]),
        ]),
    ])

    static func start() async throws -> (TestAPIServer, KubeClient) {
        let server = try TestAPIServer()
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        _ = try await client.create(.customResourceDefinitions, crd)
        return (server, client)
    }

    static func policy(_ name: String, schedule: String = "0 2 * * *", labels: [String: String]? = nil) -> Policy {
        Policy(metadata: .init(name: name, labels: labels), spec: .object(["schedule": .string(schedule)]))
    }

    @Test("create, get, conflicts, the status subresource and generation")
    func crud() async throws {
        let (server, client) = try await Self.start()
        defer { server.stop() }
        let created = try await client.create(.backupPolicies, Self.policy("orders"))
        #expect(created.metadata.generation == 1 && created.metadata.namespace == "shop" && created.metadata.uid != nil)
        do {
            _ = try await client.create(.backupPolicies, Self.policy("orders"))
            Issue.record("a duplicate was created")
        } catch { #expect(error.isAlreadyExists) }
        do {
            _ = try await client.get(.backupPolicies, name: "missing", as: Policy.self)
            Issue.record("a missing object was found")
        } catch { #expect(error.isNotFound) }

        var changed = created
        changed.spec = .object(["schedule": .string("0 3 * * *")])
        changed.status = .object(["ignored": .bool(true)])
        let updated = try await client.update(.backupPolicies, name: "orders", changed)
        #expect(updated.metadata.generation == 2, "a spec change bumps the generation")
        #expect(updated.status == .object([:]), "status is not written through the main resource")
        do {
            _ = try await client.update(.backupPolicies, name: "orders", changed)  // stale resourceVersion
            Issue.record("a stale update was accepted")
        } catch { #expect(error.isConflict) }

        var withStatus = updated
        withStatus.status = .object(["backups": .number(3)])
        withStatus.spec = .object(["schedule": .string("ignored")])
        let statusWritten = try await client.updateStatus(.backupPolicies, name: "orders", withStatus)
        #expect(statusWritten.status == .object(["backups": .number(3)]))
        #expect(statusWritten.metadata.generation == 2, "status writes leave the generation alone")
        #expect(statusWritten.spec == updated.spec, "and ignore the spec")
        #expect(Int(statusWritten.metadata.resourceVersion ?? "") ?? 0 > Int(updated.metadata.resourceVersion ?? "") ?? 0)

        let merged = try await client.patch(.backupPolicies, name: "orders", .merge(.object(["metadata": .object(["labels": .object(["tier": .string("gold")])])])), as: Policy.self)
        #expect(merged.metadata.labels == ["tier": "gold"] && merged.metadata.generation == 2)
        // A JSON patch that starts with a test op refuses to overwrite someone else's change.
        do {
            _ = try await client.patch(.backupPolicies, name: "orders", .json([
                .object(["op": .string("test"), "path": .string("/spec/schedule"), "value": .string("0 2 * * *")]),
                .object(["op": .string("replace"), "path": .string("/spec/schedule"), "value": .string("0 4 * * *")]),
            ]), as: Policy.self)
            Issue.record("a failed test op still patched")
        } catch { #expect(error.code == 422) }
    }

    @Test("finalizers hold a deletion; owners take their children with them")
    func deletion() async throws {
        let (server, client) = try await Self.start()
        defer { server.stop() }
        var held = Self.policy("held")
        held.metadata.finalizers = ["backstop.dev/cleanup"]
        _ = try await client.create(.backupPolicies, held)
        try await client.delete(.backupPolicies, name: "held")
        let marked = try await client.get(.backupPolicies, name: "held", as: Policy.self)
        #expect(marked.metadata.deletionTimestamp != nil)
        _ = try await client.patch(.backupPolicies, name: "held", .merge(.object(["metadata": .object(["finalizers": .null])])), as: Policy.self)
        await #expect(throws: KubeAPIError.self) { try await client.get(.backupPolicies, name: "held", as: Policy.self) }

        let owner = try await client.create(.backupPolicies, Self.policy("owner"))
        var child = Self.policy("child")
        child.metadata.ownerReferences = [.object(["apiVersion": .string("backstop.dev/v1alpha1"), "kind": .string("BackupPolicy"),
                                                   "name": .string("owner"), "uid": .string(owner.metadata.uid ?? "")])]
        _ = try await client.create(.backupPolicies, child)
        try await client.delete(.backupPolicies, name: "owner", propagation: .background)
        #expect(server.object(.backupPolicies, namespace: "shop", name: "child") == nil)
    }

    @Test("lists page with limit and continue, and filter by label")
    func lists() async throws {
        let (server, client) = try await Self.start()
        defer { server.stop() }
        for index in 0..<7 {
            _ = try await client.create(.backupPolicies, Self.policy("p\(index)", labels: ["env": index % 2 == 0 ? "prod" : "dev"]))
        }
        let page = try await client.list(.backupPolicies, namespace: "shop", limit: 3, as: Policy.self)
        #expect(page.items.count == 3 && page.metadata.continue != nil)
        let all = try await client.listAll(.backupPolicies, namespace: "shop", pageSize: 3, as: Policy.self)
        #expect(all.items.map(\.metadata.name) == (0..<7).map { "p\($0)" })
        #expect(Int(all.resourceVersion) == server.currentResourceVersion)
        let prod = try await client.listAll(.backupPolicies, namespace: "shop", labelSelector: "env=prod", as: Policy.self)
        #expect(prod.items.map(\.metadata.name) == ["p0", "p2", "p4", "p6"])
        #expect(try await client.listAll(.backupPolicies, namespace: "other", as: Policy.self).items.isEmpty)
    }

    @Test("no token is 401; 429 and 500 are retried, honouring Retry-After")
    func authAndRetries() async throws {
        let (server, client) = try await Self.start()
        defer { server.stop() }
        let anonymous = try KubeClient(connection: KubeConnection(server: server.url, namespace: "shop"))
        do {
            _ = try await anonymous.list(.backupPolicies, namespace: "shop", as: Policy.self)
            Issue.record("an anonymous request was served")
        } catch { #expect(error.isUnauthorized) }
        server.failNextRequests(2, status: 429, retryAfterSeconds: 0)
        #expect(try await client.list(.backupPolicies, namespace: "shop", as: Policy.self).items.isEmpty)
        server.failNextRequests(10, status: 500)
        let impatient = try KubeClient(connection: server.connection(namespace: "shop"), maximumAttempts: 2)
        do {
            _ = try await impatient.list(.backupPolicies, namespace: "shop", as: Policy.self)
            Issue.record("a persistent 500 succeeded")
        } catch { #expect(error.code == 500) }
        server.failNextRequests(0, status: 500)
    }

    @Test("watch: changes in order, bookmarks, 410 after compaction, an error when the connection drops")
    func watch() async throws {
        let (server, client) = try await Self.start()
        defer { server.stop() }
        server.setBookmarkInterval(.milliseconds(200))
        _ = try await client.create(.backupPolicies, Self.policy("before"))
        let start = try await client.listAll(.backupPolicies, namespace: "shop", as: Policy.self).resourceVersion

        let stream = try client.watch(.backupPolicies, namespace: "shop", resourceVersion: start, as: Policy.self)
        let writer = Task {
            _ = try await client.create(.backupPolicies, Self.policy("a"))
            var b = try await client.create(.backupPolicies, Self.policy("b"))
            b.spec = .object(["schedule": .string("@hourly")])
            _ = try await client.update(.backupPolicies, name: "b", b)
            try await client.delete(.backupPolicies, name: "a")
        }
        var seen: [String] = []
        var bookmarks = 0
        for try await event in stream {
            switch event {
            case .added(let policy): seen.append("added \(policy.metadata.name)")
            case .modified(let policy): seen.append("modified \(policy.metadata.name)")
            case .deleted(let policy): seen.append("deleted \(policy.metadata.name)")
            case .bookmark: bookmarks += 1
            case .error(let error): Issue.record("unexpected \(error)")
            }
            if seen.count == 4 && bookmarks > 0 { break }
        }
        stream.cancel()
        try await writer.value
        #expect(seen == ["added a", "added b", "modified b", "deleted a"])
        #expect(bookmarks > 0)

        server.expireResourceVersions()
        _ = try await client.create(.backupPolicies, Self.policy("after"))
        var gone = false
        for try await event in try client.watch(.backupPolicies, namespace: "shop", resourceVersion: start, as: Policy.self) {
            if case .error(let error) = event { gone = error.isGone }
        }
        #expect(gone, "a watch from a compacted version gets 410 Gone")

        let live = try client.watch(.backupPolicies, namespace: "shop", resourceVersion: String(server.currentResourceVersion),
                                    timeoutSeconds: 30, allowBookmarks: false, as: Policy.self)
        var iterator = live.makeAsyncIterator()
        _ = try await client.create(.backupPolicies, Self.policy("ping"))
        _ = try await iterator.next()  // the ping arrived: the watch is connected
        server.dropConnections()
        do {
            while try await iterator.next() != nil {}
            Issue.record("a dropped connection ended the watch as if the server had closed it")
        } catch {
            #expect((error as? KubeAPIError)?.kind == .transport)
        }
    }
}

@Suite("CRD schemas in the test API server")
struct SchemaTests {
    static let crd: JSONValue = {
        let schema: JSONValue = .object([
            "type": .string("object"),
            "properties": .object([
                "spec": .object([
                    "type": .string("object"), "required": .array([.string("schedule")]),
                    "properties": .object([
                        "schedule": .object(["type": .string("string"), "pattern": .string("^[^ ]+( [^ ]+){4}$")]),
                        "suspend": .object(["type": .string("boolean"), "default": .bool(false)]),
                        "compression": .object(["type": .string("string"), "enum": .array([.string("zstd"), .string("gzip"), .string("none")]),
                                                "default": .string("zstd")]),
                        "level": .object(["type": .string("integer"), "minimum": .number(1), "maximum": .number(19)]),
                        "environments": .object(["type": .string("array"), "minItems": .number(1),
                                                 "items": .object(["type": .string("object"), "required": .array([.string("name")]),
                                                                   "properties": .object(["name": .object(["type": .string("string"), "maxLength": .number(20)])])])]),
                    ]),
                ]),
                "status": .object(["type": .string("object"), "x-kubernetes-preserve-unknown-fields": .bool(true)]),
            ]),
        ])
        var crd = APIServerTests.crd
        crd["spec"]?["versions"] = .array([.object(["name": .string("v1alpha1"), "served": .bool(true), "storage": .bool(true),
                                                    "subresources": .object(["status": .object([:])]),
                                                    "schema": .object(["openAPIV3Schema": schema])])])
        return crd
    }()

    @Test("types, required fields, enums, patterns, bounds and lengths are enforced; defaults filled; unknown fields pruned")
    func enforced() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        _ = try await client.create(.customResourceDefinitions, Self.crd)

        var policy = APIServerTests.policy("good")
        policy.spec = .object(["schedule": .string("0 2 * * *"), "environments": .array([.object(["name": .string("prod")])]),
                               "unknownField": .string("dropped")])
        let created = try await client.create(.backupPolicies, policy)
        #expect(created.spec == .object(["schedule": .string("0 2 * * *"), "suspend": .bool(false), "compression": .string("zstd"),
                                         "environments": .array([.object(["name": .string("prod")])])]))
        #expect(created.metadata.generation == 1)

        let bad: [(JSONValue, String)] = [
            (.object([:]), "spec.schedule: Required value"),
            (.object(["schedule": .string("daily")]), "spec.schedule: Invalid value: \"daily\": should match"),
            (.object(["schedule": .string("0 2 * * *"), "compression": .string("lz4")]), "spec.compression: Unsupported value: \"lz4\""),
            (.object(["schedule": .string("0 2 * * *"), "level": .number(42)]), "spec.level: Invalid value: 42: should be less than or equal to 19"),
            (.object(["schedule": .string("0 2 * * *"), "level": .number(1.5)]), "spec.level: Invalid value: \"number\": must be of type integer"),
            (.object(["schedule": .string("0 2 * * *"), "suspend": .string("yes")]), "spec.suspend: Invalid value: \"string\": must be of type boolean"),
            (.object(["schedule": .string("0 2 * * *"), "environments": .array([])]), "spec.environments: Invalid value: must have at least 1 items"),
            (.object(["schedule": .string("0 2 * * *"), "environments": .array([.object([:])])]), "spec.environments[0].name: Required value"),
        ]
        for (index, (spec, expected)) in bad.enumerated() {
            var invalid = APIServerTests.policy("bad\(index)")
            invalid.spec = spec
            do {
                _ = try await client.create(.backupPolicies, invalid)
                Issue.record("invalid spec \(index) was accepted")
            } catch {
                #expect(error.code == 422 && error.message.contains(expected), "\(error.message)")
            }
        }
        // Re-sending the same spec without its defaults is no change: the generation stays.
        var same = created
        same.spec = .object(["schedule": .string("0 2 * * *"), "environments": .array([.object(["name": .string("prod")])])])
        #expect(try await client.update(.backupPolicies, name: "good", same).metadata.generation == 1)
    }
}

@Suite("Jobs in the test API server")
struct JobRunnerTests {
    static let cronJob: JSONValue = .object([
        "apiVersion": .string("batch/v1"), "kind": .string("CronJob"),
        "metadata": .object(["name": .string("orders-production")]),
        "spec": .object([
            "schedule": .string("0 2 * * *"),
            "jobTemplate": .object(["spec": .object(["template": .object(["spec": .object([
                "restartPolicy": .string("Never"),
                "containers": .array([.object([
                    "name": .string("worker"), "image": .string("backstop"), "command": .array([.string("sh")]),
                    "args": .array([.string("-c"), .string("printf 'report %s' \"$PASSWORD\" > \"$REPORT\"; exit \"$CODE\"")]),
                    "env": .array([
                        .object(["name": .string("REPORT"), "value": .string("/dev/termination-log")]),
                        .object(["name": .string("CODE"), "value": .string("0")]),
                        .object(["name": .string("PASSWORD"), "valueFrom": .object(["secretKeyRef": .object(["name": .string("db"), "key": .string("password")])])]),
                    ]),
                ])]),
            ])])])]),
        ]),
    ])

    func waitForCondition(_ client: KubeClient, _ job: String) async throws -> GenericObject {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let object = try await client.get(.jobs, name: job, as: GenericObject.self)
            if object.fields["status"]?["conditions"] != nil { return object }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await client.get(.jobs, name: job, as: GenericObject.self)
    }

    @Test("a triggered CronJob's Job runs a real executable; the Pod's termination message and the Job's conditions follow")
    func executables() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        server.setJobRunner(.executables(["sh": "/bin/sh"]))
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        _ = try await client.create(.secrets, GenericObject(metadata: ObjectMeta(name: "db"), fields: ["data": .object(["password": .string("aHVudGVyMg==")])]))
        _ = try await client.create(.cronJobs, Self.cronJob)
        let name = try server.triggerCronJob(namespace: "shop", name: "orders-production")
        let job = try await waitForCondition(client, name)
        #expect(job.fields["status"]?["conditions"]?.array?.first?["type"] == .string("Complete"))
        #expect(job.fields["status"]?["succeeded"] == .number(1))
        #expect(job.metadata.ownerReferences?.first?.kind == "CronJob")
        let pods = try await client.listAll(.pods, namespace: "shop", labelSelector: "job-name=\(name)", as: GenericObject.self).items
        #expect(pods.count == 1)
        #expect(pods.first?.fields["status"]?["containerStatuses"]?.array?.first?[path: "state.terminated.message"] == .string("report hunter2"))
        let cron = try await client.get(.cronJobs, name: "orders-production", as: GenericObject.self)
        #expect(cron.fields["status"]?["lastScheduleTime"] != nil)
    }

    @Test("a handler's failure marks the Job Failed")
    func handlerFailure() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        server.setJobRunner(.handler { run in
            JobResult(exitCode: 1, terminationMessage: "{\"outcome\":\"failed\",\"job\":\"\(run.jobName)\"}")
        })
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        var job = Self.cronJob[path: "spec.jobTemplate"] ?? .null
        job["apiVersion"] = .string("batch/v1")
        job["kind"] = .string("Job")
        job["metadata"] = .object(["name": .string("manual")])
        job["spec"]?["backoffLimit"] = 0
        _ = try await client.create(.jobs, job)
        let finished = try await waitForCondition(client, "manual")
        #expect(finished.fields["status"]?["conditions"]?.array?.first?["type"] == .string("Failed"))
        #expect(finished.fields["status"]?["failed"] == .number(1), "backoffLimit 0: one pod, no retry")
        let pod = try await client.listAll(.pods, namespace: "shop", labelSelector: "job-name=manual", as: GenericObject.self).items.first
        #expect(pod?.fields["status"]?[path: "containerStatuses"]?.array?.first?[path: "state.terminated.message"] == .string("{\"outcome\":\"failed\",\"job\":\"manual\"}"))
        // Deleting the Job takes its Pod with it.
        try await client.delete(.jobs, name: "manual", propagation: .background)
        #expect(try await client.listAll(.pods, namespace: "shop", as: GenericObject.self).items.isEmpty)
    }

    @Test("a failed pod is retried while backoffLimit allows; the Job is Complete when a retry succeeds")
    func retries() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        server.setJobRunner(.handler { run in
            JobResult(exitCode: run.attempt == 1 ? 1 : 0, terminationMessage: "attempt \(run.attempt)")
        })
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        var job = Self.cronJob[path: "spec.jobTemplate"] ?? .null
        job["apiVersion"] = .string("batch/v1")
        job["kind"] = .string("Job")
        job["metadata"] = .object(["name": .string("retried")])
        job["spec"]?["backoffLimit"] = 1
        _ = try await client.create(.jobs, job)
        let finished = try await waitForCondition(client, "retried")
        #expect(finished.fields["status"]?["conditions"]?.array?.first?["type"] == .string("Complete"))
        #expect(finished.fields["status"]?["failed"] == .number(1) && finished.fields["status"]?["succeeded"] == .number(1))
        let pods = try await client.listAll(.pods, namespace: "shop", labelSelector: "job-name=retried", as: GenericObject.self).items
        let phases = Set(pods.compactMap { $0.fields["status"]?["phase"]?.string })
        #expect(pods.count == 2 && phases == ["Failed", "Succeeded"])
    }
}
