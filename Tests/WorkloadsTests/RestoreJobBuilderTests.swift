import BackstopAPI
import Foundation
import KubeObjects
import Testing
import Workloads
import YAML

@Suite("Restore Job builder")
struct RestoreJobBuilderTests {
    /// The restores of `k8s/examples/restore.yaml`, with the uids the API server would give.
    static func examples() throws -> [BackupRestore] {
        let path = "k8s/examples/restore.yaml"
        let text = try String(contentsOfFile: CronJobBuilderTests.root + "/" + path, encoding: .utf8)
        return try YAMLNode.parseDocuments(text, source: path).enumerated().map { index, document in
            var restore = try YAMLDecoder().decode(BackupRestore.self, from: document, source: path)
            restore.metadata.uid = "00000000-0000-4000-8000-00000000010\(index)"
            return restore
        }
    }

    /// Set BACKSTOP_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change.
    @Test("the example restores' Jobs match the golden files: the environment's pod, backoffLimit 0, the target as BACKSTOP_TARGET with its own Secret")
    func golden() throws {
        let builder = CronJobBuilder(settings: .init(workerImage: "ghcr.io/backstop/backstop:0.1.0"))
        let policy = try CronJobBuilderTests.example()
        let restores = try Self.examples()
        #expect(restores.map(\.metadata.name) == ["orders-check", "orders-to-staging", "orders-rollback"])
        for restore in restores {
            let job = try builder.restoreJob(for: restore, policy: policy)
            let actual = try CronJobBuilderTests.encoded(job)
            let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/restore-\(restore.metadata.name).json").path
            if ProcessInfo.processInfo.environment["BACKSTOP_UPDATE_GOLDEN"] == "1" {
                try actual.write(toFile: path, atomically: true, encoding: .utf8)
            }
            let expected = try String(contentsOfFile: path, encoding: .utf8)
            #expect(actual == expected, "\(job.metadata.name) differs from Golden/restore-\(restore.metadata.name).json")

            // The backup CronJob's pod, apart from what a restore does differently.
            let backupPod = try #require(try builder.cronJobs(for: policy).first { $0.metadata.labels?[CronJobBuilder.environmentLabel] == restore.spec.environment })
                .spec.jobTemplate.spec.template.spec
            let pod = job.spec.template.spec
            #expect(pod.securityContext == backupPod.securityContext && pod.volumes == backupPod.volumes && pod.automountServiceAccountToken == false)
            #expect(pod.containers[0].volumeMounts == backupPod.containers[0].volumeMounts)
            #expect(job.spec.backoffLimit == 0 && job.metadata.ownerReferences?.first?.kind == "BackupRestore")
        }
        let rollback = try builder.restoreJob(for: restores[2], policy: policy)
        #expect(rollback.spec.template.spec.containers[0].args == ["restore", "latest", "--replace", "--confirm", "orders"])
        #expect(rollback.spec.activeDeadlineSeconds == 7200)
        let staging = try builder.restoreJob(for: restores[1], policy: policy).spec.template.spec.containers[0]
        #expect(staging.env.first { $0.name == "PGPASSWORD" }?.valueFrom?.secretKeyRef?.name == "orders-staging-restore")
        #expect(staging.args == ["restore", "20261201T020000Z-3f9a", "--no-owner"])
    }

    @Test("the default target name is the restore's own, never the source's, and fits PostgreSQL's 63 bytes")
    func defaultNames() throws {
        #expect(BackupRestore.defaultDatabaseName(source: "orders", restore: "orders-check") == "orders_restore_orders_check")
        let long = BackupRestore.defaultDatabaseName(source: String(repeating: "s", count: 40), restore: String(repeating: "r", count: 40))
        #expect(long.utf8.count <= 63 && long != BackupRestore.defaultDatabaseName(source: String(repeating: "s", count: 40), restore: String(repeating: "r", count: 41)))
        #expect(CronJobBuilder.restoreJobName(String(repeating: "x", count: 63)).count <= 63)
    }
}
