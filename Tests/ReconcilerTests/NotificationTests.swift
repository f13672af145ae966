import BackstopAPI
import Foundation
import KubeClient
import KubeObjects
import KubeRuntime
import KubeTestServer
@testable import Reconcilers
import Testing

/// Notifications: which status changes are worth telling (pure), the ledger in the status
/// (owed, delivered, given up), the payloads per format (golden), and deliveries to a local
/// receiver through the controller on the test API server.
@Suite("Notifications to webhooks")
struct NotificationTests {
    static func time(_ text: String) -> KubeTimestamp { KubeTimestamp(text)! }

    static let resolved: [String: BackupPolicy.ResolvedEnvironment] = {
        var policy = try! JSONDecoder().decode(BackupPolicy.self, from: PolicyReconcilerTests.manifest("k8s/examples/backuppolicy.yaml").encoded())
        policy.spec.environments[0].objectives = .init(rpo: "24h", rto: "1h")
        policy.spec.environments[0].walArchiving = .init(enabled: true)
        return Dictionary(uniqueKeysWithValues: try! policy.resolvedEnvironments().map { ($0.name, $0) })
    }()

    @Test("occurrences: a new failure, the success after it, a failed or slow drill, an RPO breach, stalled archiving; a pass that changes nothing finds nothing")
    func occurrences() {
        let now = Self.time("2026-12-01T12:00:00Z").date
        var before = BackupPolicy.EnvironmentStatus(name: "production")
        before.lastSuccessfulBackup = .init(id: "20261130T020000Z-aa01", time: Self.time("2026-11-30T02:00:00Z"), bytes: nil, durationSeconds: nil)
        before.rpo = .met
        var failed = before
        failed.lastFailure = .init(time: Self.time("2026-12-01T02:00:00Z"), reason: .backupFailed, message: "could not connect")
        var found = NotificationLedger.occurrences(before: [before], after: [failed], resolved: Self.resolved, policyCreated: nil, now: now)
        #expect(found.map(\.identity) == ["BackupFailed/production/2026-12-01T02:00:00Z"])
        #expect(NotificationLedger.occurrences(before: [failed], after: [failed], resolved: Self.resolved, policyCreated: nil, now: now).isEmpty, "seen once")

        var recovered = failed
        recovered.lastSuccessfulBackup = .init(id: "20261201T030000Z-bb02", time: Self.time("2026-12-01T03:00:00Z"), bytes: nil, durationSeconds: nil)
        found = NotificationLedger.occurrences(before: [failed], after: [recovered], resolved: Self.resolved, policyCreated: nil, now: now)
        #expect(found.map(\.identity) == ["BackupRecovered/production/20261201T030000Z-bb02"])
        var again = recovered
        again.lastSuccessfulBackup?.id = "20261201T040000Z-cc03"
        #expect(NotificationLedger.occurrences(before: [recovered], after: [again], resolved: Self.resolved, policyCreated: nil, now: now).isEmpty, "a success after a success is no news")

        var drilled = recovered
        drilled.lastDrill = .init(backupID: "x", time: Self.time("2026-12-01T05:00:00Z"), restoreSeconds: 4_000, outcome: .succeeded, message: "ok")
        #expect(NotificationLedger.occurrences(before: [recovered], after: [drilled], resolved: Self.resolved, policyCreated: nil, now: now).map(\.event) == [.rtoBreached])
        drilled.lastDrill?.outcome = .failed
        #expect(NotificationLedger.occurrences(before: [recovered], after: [drilled], resolved: Self.resolved, policyCreated: nil, now: now).map(\.event) == [.drillFailed])

        var breached = recovered
        breached.rpo = .breached
        #expect(NotificationLedger.occurrences(before: [recovered], after: [breached], resolved: Self.resolved, policyCreated: nil,
                                               now: Self.time("2026-12-02T02:59:59Z").date).isEmpty, "not before the RPO has passed")
        let breach = NotificationLedger.occurrences(before: [breached], after: [breached], resolved: Self.resolved, policyCreated: nil,
                                                    now: Self.time("2026-12-02T04:00:00Z").date)
        #expect(breach.map(\.identity) == ["RPOBreached/production/2026-12-02T03:00:00Z"], "named by when it began, whatever pass sees it")
        var never = BackupPolicy.EnvironmentStatus(name: "production")
        never.rpo = .breached
        #expect(NotificationLedger.occurrences(before: [], after: [never], resolved: Self.resolved, policyCreated: Self.time("2026-12-01T11:00:00Z").date,
                                               now: now).isEmpty, "a policy made an hour ago is not in breach of a 24h RPO")
        #expect(NotificationLedger.occurrences(before: [never], after: [never], resolved: Self.resolved, policyCreated: Self.time("2026-11-30T11:00:00Z").date,
                                               now: now).map(\.identity) == ["RPOBreached/production/2026-12-01T11:00:00Z"])

        var stalled = recovered
        stalled.walArchiving = .init(checkedAt: Self.time("2026-12-01T11:55:00Z"), failing: true, lastFailedFile: "000000010000000000000003")
        #expect(NotificationLedger.occurrences(before: [recovered], after: [stalled], resolved: Self.resolved, policyCreated: nil, now: now).map(\.event) == [.archivingStalled])
        #expect(NotificationLedger.occurrences(before: [stalled], after: [stalled], resolved: Self.resolved, policyCreated: nil, now: now).isEmpty)
    }

    @Test("the ledger: owed once per target that wants it, delivered never again, retried with a doubling wait, given up after the last attempt, dropped with its target")
    func ledger() {
        let now = Self.time("2026-12-01T12:00:00Z")
        let targets = [NotificationTarget(name: "oncall", webhook: .init(secretName: "a"), events: [.backupFailed]),
                       NotificationTarget(name: "chat", webhook: .init(secretName: "b"), format: .slack)]
        let failure = NotificationOccurrence(event: .backupFailed, environment: "production", cause: "2026-12-01T02:00:00Z", message: "m", time: now)
        let drill = NotificationOccurrence(event: .drillFailed, environment: "production", cause: "t", message: "m", time: now)
        var (ledger, _) = NotificationLedger.update(nil, targets: targets, occurrences: [failure, drill], outcomes: [], now: now.date)
        #expect(ledger?.pending?.map { "\($0.target) \($0.identity)" } == ["oncall \(failure.identity)", "chat \(failure.identity)", "chat \(drill.identity)"])
        (ledger, _) = NotificationLedger.update(ledger, targets: targets, occurrences: [failure], outcomes: [], now: now.date)
        #expect(ledger?.pending?.count == 3, "owed once")

        let delivered = NotificationOutcome(target: "oncall", identity: failure.identity, attempt: 1, error: nil, time: now)
        func refused(_ attempt: Int) -> NotificationOutcome {
            NotificationOutcome(target: "chat", identity: failure.identity, attempt: attempt, error: "the receiver answered HTTP 500", time: now)
        }
        (ledger, _) = NotificationLedger.update(ledger, targets: targets, occurrences: [], outcomes: [delivered, refused(1)], now: now.date)
        #expect(refused(1).isReflected(in: ledger) && delivered.isReflected(in: ledger) && !refused(2).isReflected(in: ledger))
        #expect(!delivered.isReflected(in: nil), "a status from before it was owed does not hold the outcome")
        (ledger, _) = NotificationLedger.update(ledger, targets: targets, occurrences: [], outcomes: [delivered, refused(1)], now: now.date)
        #expect(ledger?.delivered == ["oncall \(failure.identity)"])
        let retried = ledger?.pending?.first { $0.target == "chat" && $0.identity == failure.identity }
        #expect(retried?.attempts == 1, "an outcome folded twice (a pass from a stale status) counts once")
        #expect(retried?.lastError == "the receiver answered HTTP 500" && retried?.nextAttemptAt == KubeTimestamp(now.date.addingTimeInterval(30)))
        #expect(NotificationLedger.due(ledger, now: now.date).map(\.identity) == [drill.identity], "the refused one waits out its backoff")
        (ledger, _) = NotificationLedger.update(ledger, targets: targets, occurrences: [failure], outcomes: [], now: now.date)
        #expect(!(ledger?.pending ?? []).contains { $0.target == "oncall" }, "delivered is never owed again")

        var gaveUp: [NotificationStatus.Failure] = []
        for attempt in 2...NotificationStatus.maximumAttempts {
            (ledger, gaveUp) = NotificationLedger.update(ledger, targets: targets, occurrences: [], outcomes: [refused(attempt)], now: now.date)
        }
        #expect(gaveUp.map(\.identity) == [failure.identity] && ledger?.failed == 1 && ledger?.lastFailure?.target == "chat")
        (ledger, _) = NotificationLedger.update(ledger, targets: targets, occurrences: [failure], outcomes: [], now: now.date)
        #expect(!(ledger?.pending ?? []).contains { $0.target == "chat" && $0.identity == failure.identity }, "given up is not owed again")
        #expect(NotificationLedger.retryDelay(afterAttempt: 3) == 120 && NotificationLedger.retryDelay(afterAttempt: 20) == 1_800)

        (ledger, _) = NotificationLedger.update(ledger, targets: [targets[0]], occurrences: [], outcomes: [], now: now.date)
        #expect(ledger?.pending == nil, "a target that left the policy is owed nothing")
    }

    /// Set BACKSTOP_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change.
    @Test("payloads per format and event match the golden files; valid JSON of the receiver's shape", arguments: NotificationFormat.allCases)
    func payloads(format: NotificationFormat) throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/notifications")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for event in NotificationEvent.allCases {
            let pending = NotificationStatus.Pending(target: "oncall", identity: "\(event.rawValue)/production/2026-12-01T02:00:00Z", event: event,
                                                     environment: "production", message: "could not connect to server <db> & retry",
                                                     occurredAt: Self.time("2026-12-01T02:00:00Z"))
            let body = NotificationPayload.body(pending, format: format, subject: .init(namespace: "shop", policy: "orders"))
            let value = try JSONValue.decode(Data(body))
            switch format {
            case .generic: #expect(value["event"]?.string == event.rawValue && value["identity"] == .string(pending.identity))
            case .slack: #expect(value["text"]?.string?.contains(event.rawValue) == true && value["blocks"]?.array?.count == 3)
            case .msteams:
                #expect(value["type"] == "message")
                #expect(value[path: "attachments"]?[arrayIndex: 0]?["contentType"] == "application/vnd.microsoft.card.adaptive")
                #expect(value[path: "attachments"]?[arrayIndex: 0]?[path: "content.type"] == "AdaptiveCard")
            }
            let path = folder.appendingPathComponent("\(format.rawValue)-\(event.rawValue).json").path
            let text = String(decoding: body, as: UTF8.self) + "\n"
            if ProcessInfo.processInfo.environment["BACKSTOP_UPDATE_GOLDEN"] == "1" { try text.write(toFile: path, atomically: true, encoding: .utf8) }
            #expect(text == (try String(contentsOfFile: path, encoding: .utf8)), "\(format)-\(event) differs from its golden file")
        }
    }

    /// What the receiver saw, by path.
    final class Receiver: Sendable {
        let server: LoopbackHTTPServer
        let received = Shared<[(path: String, body: JSONValue)]>([])
        /// Answers 500 to the first two requests on /flaky.
        let flakyFailures = Shared(2)
        /// /hang answers only once released (or never).
        let release = DispatchSemaphore(value: 0)

        init() throws {
            let received = received, flakyFailures = flakyFailures, release = release
            server = try LoopbackHTTPServer { request in
                if request.path.hasSuffix("/hang") {
                    _ = release.wait(timeout: .now() + 30)
                    return .full(status: 200, contentType: "text/plain", body: Array("ok".utf8))
                }
                if request.path.hasSuffix("/flaky"), flakyFailures.withLock({ count in count -= 1; return count >= 0 }) {
                    return .full(status: 500, contentType: "text/plain", body: Array("try later".utf8))
                }
                received.withLock { $0.append((request.path, (try? JSONValue.decode(Data(request.body))) ?? .null)) }
                return .full(status: 200, contentType: "text/plain", body: Array("ok".utf8))
            }
        }

        func url(_ name: String) -> String { "http://127.0.0.1:\(server.port)/hooks/T0KEN-9f8e7d/\(name)" }
        func bodies(_ name: String) -> [JSONValue] { received.withLock { $0.filter { $0.path.hasSuffix("/" + name) }.map(\.body) } }
    }

    @Test("through the controller: each event once per target, retried through a receiver that fails twice, not repeated after a restart; a hanging receiver stalls no reconcile; no URL in the status")
    func deliveries() async throws {
        let test = PolicyReconcilerTests()
        let (server, client) = try await test.start(policy: false)
        defer { server.stop() }
        let receiver = try Receiver()
        defer {
            for _ in 0..<4 { receiver.release.signal() }
            receiver.server.stop()
        }
        let admin = try KubeClient(connection: server.connection(namespace: ControlPlane.namespace))
        for name in ["generic", "flaky", "hang"] {
            let secret: JSONValue = ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": .string("webhook-\(name)")],
                                     "stringData": ["url": .string(receiver.url(name))]]
            let _: JSONValue = try await admin.create(.secrets, namespace: ControlPlane.namespace, secret)
        }
        var policy = try PolicyReconcilerTests.manifest("k8s/examples/backuppolicy.yaml")
        policy["spec"]?["notifications"] = [
            ["name": "oncall", "webhook": ["secretName": "webhook-generic"], "events": ["BackupFailed", "BackupRecovered"]],
            ["name": "chat", "webhook": ["secretName": "webhook-flaky"], "format": "slack", "events": ["BackupFailed"]],
            ["name": "stuck", "webhook": ["secretName": "webhook-hang"], "format": "msteams", "events": ["BackupFailed", "BackupRecovered"]],
        ]
        _ = try await client.create(.backupPolicies, namespace: "shop", policy)
        // The first run fails (both pods), every later one succeeds.
        let outcomes = Shared([false, false])
        server.setJobRunner(.handler { _ in
            let succeeds = outcomes.withLock { $0.isEmpty ? true : $0.removeFirst() }
            let report = succeeds
                ? "{\"backupID\":\"20261201T020000Z-0a0b\",\"command\":\"backup\",\"completedAt\":\"2026-12-01T02:00:05Z\",\"durationSeconds\":5,\"outcome\":\"succeeded\",\"startedAt\":\"2026-12-01T02:00:00Z\",\"storedBytes\":4096,\"verified\":true}"
                : "{\"command\":\"backup\",\"completedAt\":\"2026-12-01T02:00:05Z\",\"durationSeconds\":0.5,\"message\":\"could not connect to server\",\"outcome\":\"failed\",\"startedAt\":\"2026-12-01T02:00:00Z\"}"
            return JobResult(exitCode: succeeds ? 0 : 1, terminationMessage: report + "\n")
        })
        let metrics = Metrics()
        func startController() throws -> Task<Void, Never> {
            let outbox = try NotificationOutbox(client: try ControlPlane.controllerClient(server), metrics: metrics, logger: PolicyReconcilerTests.logger,
                                                timeout: .seconds(1), retryBase: .milliseconds(200))
            let control = try test.controller(server, metrics: metrics, notifications: outbox)
            return Task { await control.run() }
        }
        var running = try startController()
        #expect(try await test.eventually { try await test.cronJobs(client).count == 3 })

        func status() async throws -> BackupPolicy.Status? { try await client.get(.backupPolicies, name: "orders", as: BackupPolicy.self).status }
        func diagnosis() async -> String {
            let ledger = (try? await status()?.notifications).map { String(describing: $0) } ?? "none"
            return "received: \(receiver.received.withLock { $0.map { "\($0.path) \($0.body["event"]?.string ?? "")" } }); ledger: \(ledger)"
        }
        _ = try server.triggerCronJob(namespace: "shop", name: "orders-production")
        let told = try await PolicyReconcilerTests.eventually { receiver.bodies("generic").count == 1 && receiver.bodies("flaky").count == 1 }
        let toldDiagnosis = await diagnosis()
        #expect(told, "\(toldDiagnosis)")
        let failure = try #require(receiver.bodies("generic").first)
        #expect(failure["event"] == "BackupFailed" && failure["environment"] == "production" && failure["message"] == "could not connect to server")
        #expect(receiver.bodies("flaky").first?["text"]?.string?.contains("BackupFailed") == true, "slack format, after two refusals")
        #expect(metrics.render().contains("backstop_notifications_failed_total{namespace=\"shop\",policy=\"orders\",target=\"chat\"} 2"))
        #expect(try await PolicyReconcilerTests.eventually {
            let ledger = try await status()?.notifications
            return ledger?.delivered?.count == 2 && ledger?.pending?.allSatisfy { $0.target == "stuck" } == true
        })

        // The hanging receiver times out again and again; meanwhile a success is recorded as
        // fast as ever and told to the others.
        try await Task.sleep(for: .seconds(1.1))  // results are ordered by their second-granular times
        _ = try server.triggerCronJob(namespace: "shop", name: "orders-production")
        #expect(try await PolicyReconcilerTests.eventually(timeout: .seconds(5)) {
            try await status()?.environments?.first { $0.name == "production" }?.lastSuccessfulBackup?.id == "20261201T020000Z-0a0b"
        })
        let recovered = try await PolicyReconcilerTests.eventually { receiver.bodies("generic").map { $0["event"] } == ["BackupFailed", "BackupRecovered"] }
        let recoveredDiagnosis = await diagnosis()
        #expect(recovered, "\(recoveredDiagnosis)")
        #expect(receiver.bodies("flaky").count == 1, "chat wants BackupFailed only")
        #expect(try await PolicyReconcilerTests.eventually {
            try await status()?.notifications?.pending?.first { $0.target == "stuck" }?.lastError == "the receiver could not be reached (timed out)"
        })

        // A new controller (a restart, a new leader): what the status records as delivered is
        // not sent again. (An outcome not yet written when the old one stopped would be: at
        // least once.)
        #expect(try await PolicyReconcilerTests.eventually { try await status()?.notifications?.delivered?.count == 3 })
        running.cancel()
        running = try startController()
        defer { running.cancel() }
        _ = try await client.patch(.backupPolicies, name: "orders", .merge(["metadata": ["labels": ["touch": "1"]]]), as: GenericObject.self)
        try await Task.sleep(for: .seconds(1.5))
        let restartDiagnosis = await diagnosis()
        #expect(receiver.bodies("generic").count == 2 && receiver.bodies("flaky").count == 1, "\(restartDiagnosis)")

        // The URL (and its token) is nowhere in the status or the Events.
        let policyText = String(decoding: try await client.get(.backupPolicies, name: "orders", as: JSONValue.self).encoded(), as: UTF8.self)
        let events = try await client.listAll(.events, namespace: "shop", as: JSONValue.self).items.map { String(decoding: $0.encoded(), as: UTF8.self) }
        #expect(!policyText.contains("T0KEN-9f8e7d") && !events.joined().contains("T0KEN-9f8e7d"))
    }
}
