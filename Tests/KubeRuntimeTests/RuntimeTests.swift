import Foundation
import KubeClient
import KubeObjects
import HTTP
import KubeRuntime
import KubeTestServer
import Logging
import Synchronization
import Testing
import BlockingCalls

struct Item: KubeObject, Equatable {
    var apiVersion = "v1"
    var kind = "Secret"
    var metadata: ObjectMeta
    var data: [String: String]?
}

@Suite("Work queue")
struct WorkQueueTests {
    @Test("a key is queued once, never handed out twice at once, and runs again if changed meanwhile")
    func semantics() async {
        let queue = WorkQueue<String>()
        await queue.add("a")
        await queue.add("a")
        await queue.add("b")
        #expect(await queue.length == 2)
        let first = await queue.next()
        #expect(first == "a")
        await queue.add("a")  // changed while being processed: not handed out again yet
        #expect(await queue.next() == "b")
        #expect(await queue.length == 0)
        await queue.done("a")
        #expect(await queue.next() == "a", "it comes back once the first run is done")
        await queue.done("a")
        await queue.done("b")
        #expect(await queue.length == 0)
    }

    @Test("failing keys back off per key, and forget resets")
    func backoff() async throws {
        let queue = WorkQueue<String>(backoff: Backoff(base: .milliseconds(20), cap: .milliseconds(200)))
        for _ in 0..<3 { await queue.addRateLimited("x") }
        #expect(await queue.failureCount("x") == 3)
        #expect(await queue.length == 0, "not before its delay")
        #expect(await eventually { await queue.length == 1 }, "one entry however often it failed")
        try await Task.sleep(for: .milliseconds(250))
        #expect(await queue.length == 1, "and only one")
        await queue.forget("x")
        #expect(await queue.failureCount("x") == 0)
        await queue.shutDown()
        #expect(await queue.next() == "x", "queued keys still drain")
        #expect(await queue.next() == nil)
    }
}

@Suite("Watcher, controller and leader election against the test API server")
struct RuntimeTests {
    static var logger: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    @Test("the watcher survives disconnects and a 410 without losing or repeating a change")
    func watcherThroughFaults() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(connection: server.connection(namespace: "ns"))
        let watcher = Watcher<Item>(client: client, resource: .secrets, namespace: "ns",
                                    backoff: Backoff(base: .milliseconds(10), cap: .milliseconds(50)), watchTimeoutSeconds: 2)
        let cache = ObjectCache<Item>()
        let seen = Shared<[String: [String]]>([:])  // key -> resourceVersions applied, in order
        let restarts = Shared(0)
        let watching = Task {
            await watcher.run { event in
                cache.apply(event)
                switch event {
                case .restarted: restarts.withLock { $0 += 1 }
                case .applied(let item): seen.withLock { $0[item.key, default: []].append(item.metadata.resourceVersion ?? "") }
                case .deleted: break
                }
            }
        }
        for round in 0..<6 {
            for index in 0..<10 {
                let name = "s\(index)"
                if round == 0 {
                    _ = try await client.create(.secrets, Item(metadata: ObjectMeta(name: name), data: ["round": "0"]))
                } else {
                    var item = try await client.get(.secrets, name: name, as: Item.self)
                    item.data = ["round": "\(round)"]
                    _ = try await client.update(.secrets, name: name, item)
                }
            }
            if round == 2 || round == 4 { server.dropConnections() }
            if round == 3 {
                server.dropConnections()
                server.expireResourceVersions()
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await client.delete(.secrets, name: "s9")
        // Wait until the cache shows the final state.
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if cache.count == 9 && cache.all.allSatisfy({ $0.data == ["round": "5"] }) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        watching.cancel()
        let truth = try await client.listAll(.secrets, namespace: "ns", as: Item.self).items
        #expect(Dictionary(uniqueKeysWithValues: truth.map { ($0.key, $0) }) == Dictionary(uniqueKeysWithValues: cache.all.map { ($0.key, $0) }))
        for (key, versions) in seen.withLock({ $0 }) {
            #expect(Set(versions).count == versions.count, "\(key) saw a version twice: \(versions)")
            #expect(versions == versions.sorted { Int($0) ?? 0 < Int($1) ?? 0 }, "\(key) saw versions out of order")
        }
        #expect(restarts.withLock { $0 } >= 2, "the 410 caused a relist")
    }

    @Test("the controller reconciles every key, requeues, and retries failures with backoff")
    func controller() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(connection: server.connection(namespace: "ns"))
        for index in 0..<5 { _ = try await client.create(.secrets, Item(metadata: ObjectMeta(name: "c\(index)"))) }
        let calls = Shared<[String: Int]>([:])
        let concurrent = Shared((now: 0, most: 0))
        let controller = Controller<Item>(
            watcher: Watcher(client: client, resource: .secrets, namespace: "ns"), workers: 3, logger: Self.logger
        ) { key, object in
            let count = calls.withLock { counts -> Int in
                counts[key, default: 0] += 1
                return counts[key, default: 0]
            }
            concurrent.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
            defer { concurrent.withLock { $0.now -= 1 } }
            try await Task.sleep(for: .milliseconds(5))
            if key == "ns/c0" && count < 3 { throw ReconcileFailure() }  // fails twice, then succeeds
            if key == "ns/c1" && count < 2 { return .requeue(after: .milliseconds(50)) }
            #expect(object != nil || key == "ns/c4", "only the deleted object is gone from the cache")
            return .awaitChange
        }
        let running = Task { await controller.run() }
        #expect(await eventually { calls.withLock { $0["ns/c4"] } == 1 })
        try await client.delete(.secrets, name: "c4")
        #expect(await eventually {
            calls.withLock { $0["ns/c0"] == 3 && $0["ns/c1"] == 2 && $0["ns/c4"] == 2 }
        })
        try await Task.sleep(for: .milliseconds(100))  // nothing more should come
        running.cancel()
        await running.value
        let counts = calls.withLock { $0 }
        #expect(counts["ns/c0"] == 3, "two failures, then success")
        #expect(counts["ns/c1"] == 2, "requeued once")
        #expect(counts["ns/c2"] == 1 && counts["ns/c3"] == 1)
        #expect(counts["ns/c4"] == 2, "its deletion is reconciled too")
        #expect(concurrent.withLock { $0.most } <= 3)
    }

    @Test("two candidates elect one leader; a stopping leader hands over; an expired lease is taken over")
    func leaderElection() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(connection: server.connection(namespace: "backstop-system"))
        // Generous against a loaded CI machine: a starved leader must step down (renewDeadline)
        // well before others may take over (leaseDuration).
        let timing = LeaderElector.Timing(leaseDuration: .seconds(3), renewDeadline: .seconds(1), retryPeriod: .milliseconds(100))
        let leaders = Shared<[String]>([])
        let active = Shared(0)
        let overlap = Shared(false)
        func candidate(_ identity: String) -> Task<Void, Never> {
            let elector = LeaderElector(client: client, namespace: "backstop-system", name: "backstop-controller",
                                        identity: identity, timing: timing, logger: Self.logger)
            return Task {
                await elector.run {
                    leaders.withLock { $0.append(identity) }
                    active.withLock { count in
                        count += 1
                        if count > 1 { overlap.withLock { $0 = true } }
                    }
                    while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(20)) }
                    active.withLock { $0 -= 1 }
                }
            }
        }
        let first = candidate("a")
        #expect(await eventually { leaders.withLock { $0 } == ["a"] })
        let second = candidate("b")
        try await Task.sleep(for: .milliseconds(500))
        #expect(leaders.withLock { $0 } == ["a"], "one leader while the first renews")
        let handover = ContinuousClock.now
        first.cancel()
        await first.value
        #expect(await eventually { leaders.withLock { $0 } == ["a", "b"] })
        #expect(ContinuousClock.now - handover < .milliseconds(2_500), "the lease was released, not left to expire")
        second.cancel()
        await second.value
        #expect(!overlap.withLock { $0 }, "never two leaders at once")

        // A leader that died without releasing: its lease expires, then a candidate takes over.
        var lease = try await client.get(.leases, namespace: "backstop-system", name: "backstop-controller", as: GenericObject.self)
        lease.fields["spec"] = .object(["holderIdentity": .string("ghost"), "leaseDurationSeconds": .number(2),
                                        "renewTime": .string(LeaderElectorClock.now())])
        _ = try await client.update(.leases, namespace: "backstop-system", name: "backstop-controller", lease)
        let started = ContinuousClock.now
        let third = candidate("c")
        #expect(await eventually { leaders.withLock { $0 }.last == "c" })
        #expect(ContinuousClock.now - started >= .milliseconds(1_800), "not before the ghost's lease expired")
        third.cancel()
        await third.value
    }
}

struct ReconcileFailure: Error {}

/// Waits until `condition` holds, up to a deadline generous enough for a loaded CI machine.
func eventually(within limit: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}

/// A value shared between a test and the tasks it starts.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<T>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}

enum LeaderElectorClock {
    static func now() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}

@Suite("Termination signals", .serialized)
struct SignalTests {
    @Test("SIGTERM cancels the work: a leader releases its Lease instead of leaving it to expire")
    func sigtermReleasesTheLease() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(connection: server.connection(namespace: "backstop-system"))
        let elector = LeaderElector(client: client, namespace: "backstop-system", name: "controller", identity: "pod-1",
                                    timing: .init(leaseDuration: .seconds(30), renewDeadline: .seconds(20), retryPeriod: .milliseconds(50)),
                                    logger: RuntimeTests.logger)
        let leading = Shared(false)
        let run = Task {
            try await runInterruptibly {
                await elector.run {
                    leading.withLock { $0 = true }
                    while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(10)) }
                }
            }
        }
        #expect(await eventually { leading.withLock { $0 } })
        kill(getpid(), SIGTERM)
        try await run.value
        let lease = try await client.get(.leases, namespace: "backstop-system", name: "controller", as: GenericObject.self)
        #expect(lease.fields["spec"]?["holderIdentity"] == .string(""), "released for the next leader")
    }
}
