import KubeClient
import KubeObjects
@testable import Reconcilers
import Testing
import Workloads

/// What the reconciler remembers between passes about its own applies: a CronJob's watch
/// event that is the echo of its own apply needs no pass, whether it comes after the apply's
/// answer or (as the API server sends it to watches first) before it; anything else does.
@Suite("Recognising the echo of the controller's own apply")
struct ReconcileMemoTests {
    static let policyKey = "shop/orders"

    static func cronJob(version: String) throws -> ObservedCronJob {
        let desired = try PolicyPlan.make(PolicyPlanTests.observation(PolicyPlanTests.example()), workerImage: "w").desired[0]
        return try PolicyPlanTests.observed(desired) { $0.resourceVersion = version }
    }

    static func answer(version: String) throws -> AppliedObject {
        try AppliedObject(json: ["metadata": ["resourceVersion": .string(version), "creationTimestamp": "2026-11-18T00:00:00Z"]])
    }

    @Test("the echo is recognised before or after the answer, once; its fields are accepted for the desired state")
    func echo() throws {
        let memo = ReconcileMemo()
        let early = try Self.cronJob(version: "5")
        memo.applying(early.key)
        #expect(memo.isEcho(of: early), "held while the apply is under way")
        memo.applied(early.key, answer: try Self.answer(version: "5"), policy: Self.policyKey)
        #expect(!memo.takeUnexplained(Self.policyKey))
        #expect(memo.acceptedFieldHashes(for: [early])[early.metadata.name] == early.appliedFieldsHash)

        let late = try Self.cronJob(version: "6")
        memo.applying(late.key)
        memo.applied(late.key, answer: try Self.answer(version: "6"), policy: Self.policyKey)
        #expect(memo.isEcho(of: late), "after the answer, by its version")
        #expect(!memo.isEcho(of: late), "only once: a relist of the same version later is looked at")
        #expect(!memo.takeUnexplained(Self.policyKey))
    }

    @Test("another writer's change during an apply, or a failed apply with changes seen, asks for another pass")
    func someoneElse() throws {
        let memo = ReconcileMemo()
        let edited = try Self.cronJob(version: "8")
        memo.applying(edited.key)
        #expect(memo.isEcho(of: edited))
        memo.applied(edited.key, answer: try Self.answer(version: "9"), policy: Self.policyKey)
        #expect(memo.takeUnexplained(Self.policyKey), "version 8 was not this apply's")
        #expect(!memo.takeUnexplained(Self.policyKey), "asking clears it")
        #expect(memo.isEcho(of: try Self.cronJob(version: "9")), "the echo that comes after is still recognised")

        memo.applying(edited.key)
        #expect(memo.isEcho(of: try Self.cronJob(version: "10")))
        memo.applied(edited.key, answer: nil, policy: Self.policyKey)
        #expect(memo.takeUnexplained(Self.policyKey))
        #expect(!memo.isEcho(of: try Self.cronJob(version: "11")), "no apply under way: a change is a change")
    }
}
