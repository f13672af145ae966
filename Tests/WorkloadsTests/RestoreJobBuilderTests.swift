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

    /// Set BACKSTOP_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change.
    @Test("drill CronJobs match the golden files: the sidecar form (postgres of the backup's major, restricted, localhost only) and a named scratch server")
    func drillGolden() throws {
        let path = "k8s/examples/backuppolicy-drills.yaml"
        let text = try String(contentsOfFile: CronJobBuilderTests.root + "/" + path, encoding: .utf8)
        var policy = try YAMLDecoder().decode(BackupPolicy.self, from: text, source: path)
        policy.metadata.uid = "00000000-0000-4000-8000-000000000201"
        var status = BackupPolicy.Status()
        var production = BackupPolicy.EnvironmentStatus(name: "production")
        production.serverMajorVersion = 16
        status.environments = [production]
        policy.status = status
        let builder = CronJobBuilder(settings: .init(workerImage: "ghcr.io/backstop/backstop:0.1.0"))
        let cronJobs = try builder.cronJobs(for: policy)
        #expect(cronJobs.map(\.metadata.name) == ["billing-production", "billing-production-drill", "billing-staging", "billing-staging-drill"])
        for cronJob in cronJobs where cronJob.metadata.name.hasSuffix("-drill") {
            let actual = try CronJobBuilderTests.encoded(cronJob)
            let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(cronJob.metadata.name).json").path
            if ProcessInfo.processInfo.environment["BACKSTOP_UPDATE_GOLDEN"] == "1" {
                try actual.write(toFile: golden, atomically: true, encoding: .utf8)
            }
            #expect(actual == (try String(contentsOfFile: golden, encoding: .utf8)), "\(cronJob.metadata.name) differs from Golden/\(cronJob.metadata.name).json")
            #expect(cronJob.metadata.labels?[CronJobBuilder.taskLabel] == "drill" && cronJob.spec.jobTemplate.spec.backoffLimit == 0)
        }
        let sidecar = try #require(cronJobs[1].spec.jobTemplate.spec.template.spec.initContainers?.first)
        #expect(sidecar.image == "postgres:16" && sidecar.restartPolicy == "Always" && sidecar.securityContext.readOnlyRootFilesystem)
        #expect(cronJobs[1].spec.jobTemplate.spec.template.spec.containers[0].env.first { $0.name == "BACKSTOP_SCRATCH" }?.value?.contains("host=127.0.0.1") == true)
        let named = cronJobs[3].spec.jobTemplate.spec.template.spec
        #expect(named.initContainers == nil)
        #expect(named.containers[0].env.first { $0.name == "BACKSTOP_SCRATCH" }?.value == "host=drills.databases.svc port=5432 dbname=postgres sslmode=require")
        #expect(named.containers[0].env.first { $0.name == "PGUSER" }?.valueFrom?.secretKeyRef?.name == "drill-scratch")
        #expect(named.containers[0].env.first { $0.name == "BACKSTOP_DATABASE" } == nil, "a drill never connects to the source")

        // `x` with a drill and an environment called `x-drill` would share a CronJob name.
        var colliding = policy
        colliding.spec.environments[1].name = "production-drill"
        #expect(throws: BackstopAPIError.self) { try builder.cronJobs(for: colliding) }
        do { _ = try builder.cronJobs(for: colliding) } catch {
            #expect(error.field == "spec.environments[1].name" && error.problem.contains("billing-production-drill"), "\(error)")
        }
    }

    @Test("a point-in-time restore fills the claim as the server's user, with the target and the bundle's path; a logical environment or a second target is refused")
    func pointInTime() throws {
        let path = "k8s/examples/postgres-archiving.yaml"
        let text = try String(contentsOfFile: CronJobBuilderTests.root + "/" + path, encoding: .utf8)
        let documents = try YAMLNode.parseDocuments(text, source: path)
        var policy = try YAMLDecoder().decode(BackupPolicy.self, from: documents[0], source: path)
        policy.metadata.uid = "00000000-0000-4000-8000-000000000201"
        var restore = try YAMLDecoder().decode(BackupRestore.self, from: try #require(documents.last), source: path)
        restore.metadata.uid = "00000000-0000-4000-8000-000000000202"
        let job = try CronJobBuilder(settings: .init(workerImage: "w")).restoreJob(for: restore, policy: policy)
        let pod = job.spec.template.spec
        #expect(pod.containers[0].args == ["restore", "latest", "--physical", "--data-dir", "/recovery/pgdata",
                                           "--wal-fetch-path", "/backstop/bin/backstop", "--target-time", "2026-12-01T09:59:00Z"])
        #expect(pod.volumes.contains { $0.persistentVolumeClaim?.claimName == "ledger-db-recovered" })
        #expect(pod.containers[0].volumeMounts.contains { $0.mountPath == "/recovery" })
        #expect(pod.securityContext.runAsUser == 999 && pod.securityContext.fsGroup == 999 && pod.securityContext.runAsNonRoot)
        #expect(!pod.containers[0].env.contains { $0.name == WorkerOption.target.environmentVariable })

        var twoTargets = restore
        twoTargets.spec.pointInTime?.targetName = "before_migration"
        var logical = try CronJobBuilderTests.example()
        logical.metadata.uid = policy.metadata.uid
        var onLogical = restore
        onLogical.spec.policy = logical.metadata.name
        let cases: [(BackupRestore, BackupPolicy, String)] = [(twoTargets, policy, "spec.pointInTime"), (onLogical, logical, "spec.pointInTime")]
        for (wrong, against, field) in cases {
            do {
                _ = try wrong.resolve(against: against)
                Issue.record("accepted: \(wrong.spec)")
            } catch {
                #expect(error.field == field, "\(error.description)")
            }
        }
        var badTime = restore
        badTime.spec.pointInTime?.targetTime = "yesterday"
        #expect(throws: BackstopAPIError.self) { _ = try badTime.resolve(against: policy) }
    }
}
