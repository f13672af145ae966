internal import Foundation
public import KubeClient
internal import KubeObjects
public import Logging
internal import Synchronization

/// Leader election on a `coordination.k8s.io/v1` Lease, as client-go does it: the holder
/// renews `renewTime` every `retryPeriod`; others take over once `leaseDuration` has passed
/// without a renewal; every write is guarded by the Lease's resourceVersion, so two
/// candidates can never both win. A leader that stops (SIGTERM) releases the Lease so the
/// next one takes over at once.
public struct LeaderElector: Sendable {
    public struct Timing: Sendable {
        public var leaseDuration: Duration
        public var renewDeadline: Duration
        public var retryPeriod: Duration

        public init(leaseDuration: Duration = .seconds(15), renewDeadline: Duration = .seconds(10), retryPeriod: Duration = .seconds(2)) {
            self.leaseDuration = leaseDuration
            self.renewDeadline = renewDeadline
            self.retryPeriod = retryPeriod
        }
    }

    struct Lease: KubeObject {
        struct Spec: Codable, Sendable {
            var holderIdentity: String?
            var leaseDurationSeconds: Int?
            var acquireTime: String?
            var renewTime: String?
            var leaseTransitions: Int?
        }
        var apiVersion = "coordination.k8s.io/v1"
        var kind = "Lease"
        var metadata: ObjectMeta
        var spec: Spec
    }

    let client: KubeClient
    let namespace: String
    let name: String
    public let identity: String
    let timing: Timing
    let logger: Logger
    /// Where a Lease the elector may not read or write is reported (and logged).
    public let health: APIAccessHealth
    private let leadership = Leadership()

    /// Whether this candidate holds the Lease and runs `lead` now.
    public var isLeading: Bool { leadership.held.load(ordering: .acquiring) }

    public init(client: KubeClient, namespace: String, name: String, identity: String, timing: Timing = Timing(), logger: Logger) {
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing
        self.logger = logger
        self.health = APIAccessHealth(logger: logger)
    }

    var scope: String { "lease \(namespace)/\(name)" }

    /// Campaigns until elected, runs `lead` while the Lease is held, and returns when the task
    /// is cancelled (releasing the Lease) or leadership is lost (after cancelling `lead`).
    public func run(_ lead: @escaping @Sendable () async -> Void) async {
        while !Task.isCancelled {
            if await tryAcquireOrRenew() { break }
            try? await Task.sleep(for: timing.retryPeriod)
        }
        guard !Task.isCancelled else { return }
        logger.info("\(identity) leads \(namespace)/\(name)")
        leadership.held.store(true, ordering: .releasing)
        defer { leadership.held.store(false, ordering: .releasing) }
        let leading = Task { await lead() }
        var lastRenewal = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: timing.retryPeriod)
            if Task.isCancelled { break }
            // Step down on our own clock before anyone else may take over (renewDeadline <
            // leaseDuration), even when renewals hang rather than fail.
            if ContinuousClock.now - lastRenewal > timing.renewDeadline { break }
            let attempt = ContinuousClock.now
            if await tryAcquireOrRenew() { lastRenewal = attempt }
        }
        let lost = !Task.isCancelled
        if lost { logger.warning("\(identity) lost the lease \(namespace)/\(name)") }
        leading.cancel()
        await leading.value
        if !lost { await release() }
    }

    /// One attempt: create the Lease, renew ours, or take over an expired one.
    func tryAcquireOrRenew() async -> Bool {
        let now = KubeTime.microTime(Date())
        let seconds = Int(timing.leaseDuration.components.seconds)
        do {
            var lease = try await client.get(.leases, namespace: namespace, name: name, as: Lease.self)
            let holder = lease.spec.holderIdentity ?? ""
            if holder != identity && !holder.isEmpty {
                let renewed = lease.spec.renewTime.flatMap(KubeTime.parse) ?? .distantPast
                let duration = Double(lease.spec.leaseDurationSeconds ?? seconds)
                guard Date().timeIntervalSince(renewed) > duration else { return false }
            }
            if holder != identity {
                lease.spec.acquireTime = now
                lease.spec.leaseTransitions = (lease.spec.leaseTransitions ?? 0) + 1
            }
            lease.spec.holderIdentity = identity
            lease.spec.leaseDurationSeconds = seconds
            lease.spec.renewTime = now
            do {
                _ = try await client.update(.leases, namespace: namespace, name: name, lease)  // 409 if someone else wrote first
            } catch {
                report(error, verb: "update")
                return false
            }
            health.recovered(scope)
            return true
        } catch let error where error.isNotFound {
            let lease = Lease(metadata: ObjectMeta(name: name, namespace: namespace),
                              spec: .init(holderIdentity: identity, leaseDurationSeconds: seconds, acquireTime: now, renewTime: now, leaseTransitions: 0))
            do {
                _ = try await client.create(.leases, namespace: namespace, lease)
            } catch {
                report(error, verb: "create")
                return false
            }
            health.recovered(scope)
            return true
        } catch {
            report(error, verb: "get")
            return false
        }
    }

    /// A conflict is the normal race between candidates; anything else is reported.
    private func report(_ error: KubeAPIError, verb: String) {
        if error.isConflict || error.isAlreadyExists { return }
        health.failed(scope, verb: verb, error: error)
    }

    /// Gives the Lease up so a successor need not wait for it to expire.
    func release() async {
        guard var lease = try? await client.get(.leases, namespace: namespace, name: name, as: Lease.self),
              lease.spec.holderIdentity == identity else { return }
        lease.spec.holderIdentity = ""
        lease.spec.renewTime = KubeTime.microTime(Date(timeIntervalSince1970: 0))
        _ = try? await client.update(.leases, namespace: namespace, name: name, lease)
        logger.info("\(identity) released \(namespace)/\(name)")
    }

}

/// A flag shared by copies of the (value-type) elector.
private final class Leadership: Sendable {
    let held = Atomic(false)
}
