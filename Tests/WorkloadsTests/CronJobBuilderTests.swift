import KubeObjects
import BackstopAPI
import Foundation
import Testing
import Workloads
import YAML

@Suite("CronJob builder")
struct CronJobBuilderTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    static func example() throws -> BackupPolicy {
        let text = try String(contentsOfFile: root + "/k8s/examples/backuppolicy.yaml", encoding: .utf8)
        var policy = try YAMLDecoder().decode(BackupPolicy.self, from: text, source: "k8s/examples/backuppolicy.yaml")
        policy.metadata.uid = "00000000-0000-4000-8000-000000000001"
        return policy
    }

    static func encoded(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }

    /// Set BACKSTOP_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change.
    @Test("the example policy's CronJobs match the golden files")
    func golden() throws {
        let builder = CronJobBuilder(settings: .init(workerImage: "ghcr.io/backstop/backstop:0.1.0"))
        let cronJobs = try builder.cronJobs(for: Self.example())
        #expect(cronJobs.map(\.metadata.name) == ["orders-production", "orders-staging", "orders-development"])
        for cronJob in cronJobs {
            let actual = try Self.encoded(cronJob)
            let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(cronJob.metadata.name).json").path
            if ProcessInfo.processInfo.environment["BACKSTOP_UPDATE_GOLDEN"] == "1" {
                try actual.write(toFile: path, atomically: true, encoding: .utf8)
            }
            let expected = try String(contentsOfFile: path, encoding: .utf8)
            #expect(actual == expected, "\(cronJob.metadata.name) differs from Golden/\(cronJob.metadata.name).json")
        }
    }

    @Test("a physical environment's backups run with BACKSTOP_PHYSICAL, the others' do not; walArchiving adds the archiving check's CronJob")
    func physicalMethod() throws {
        var policy = try Self.example()
        policy.spec.environments[0].method = .physical
        policy.spec.environments[0].walArchiving = .init(enabled: true)
        let all = try CronJobBuilder(settings: .init(workerImage: "w")).cronJobs(for: policy)
        #expect(all.map(\.metadata.name) == ["orders-production", "orders-production-archiving", "orders-staging", "orders-development"])
        let cronJobs = all.filter { $0.metadata.labels?[CronJobBuilder.taskLabel] == nil }
        let physical = cronJobs.map { $0.spec.jobTemplate.spec.template.spec.containers[0].env.first { $0.name == WorkerOption.physical.environmentVariable }?.value }
        #expect(physical == ["true", nil, nil])
    }

    @Test("the archiving example's policy takes physical base backups of its production environment")
    func archivingExample() throws {
        let text = try String(contentsOfFile: Self.root + "/k8s/examples/postgres-archiving.yaml", encoding: .utf8)
        let document = try #require(text.components(separatedBy: "\n---\n").first { $0.contains("kind: BackupPolicy") })
        let policy = try YAMLDecoder().decode(BackupPolicy.self, from: document, source: "k8s/examples/postgres-archiving.yaml")
        let environments = try policy.resolvedEnvironments()
        #expect(environments.map(\.method) == [BackupPolicy.BackupMethod.physical] && environments.allSatisfy(\.walArchiving))
        let cronJob = try CronJobBuilder(settings: .init(workerImage: "w")).cronJobs(for: policy)[0]
        #expect(cronJob.spec.jobTemplate.spec.template.spec.containers[0].env.contains { $0.name == "BACKSTOP_PHYSICAL" && $0.value == "true" })
    }

    @Test("every worker option comes from the one table; Secrets are referenced, never copied")
    func workerEnvironment() throws {
        let cronJob = try CronJobBuilder(settings: .init(workerImage: "w")).cronJobs(for: Self.example())[0]
        let container = try #require(cronJob.spec.jobTemplate.spec.template.spec.containers.first)
        let names = Set(container.env.map(\.name))
        let table = Set(WorkerOption.allCases.map(\.environmentVariable))
        #expect(names.subtracting(["PGUSER", "PGPASSWORD"]).isSubset(of: table))
        #expect(container.env.first { $0.name == "BACKSTOP_NAMESPACE" }?.valueFrom?.fieldRef?.fieldPath == "metadata.namespace")
        #expect(container.env.first { $0.name == "PGPASSWORD" }?.valueFrom?.secretKeyRef?.name == "orders-backup")
        #expect(container.env.allSatisfy { $0.value.map { !$0.contains("password") } ?? true })
        #expect(container.env.first { $0.name == "BACKSTOP_KEEP_WITHIN" }?.value == "90d")
        #expect(container.env.first { $0.name == "BACKSTOP_TIER" }?.value == "30d:STANDARD_IA")
        #expect(container.env.first { $0.name == "BACKSTOP_REPORT_PATH" }?.value == "/dev/termination-log")
        // The restricted Pod Security profile.
        let pod = cronJob.spec.jobTemplate.spec.template.spec
        #expect(pod.securityContext.runAsNonRoot && pod.securityContext.seccompProfile.type == "RuntimeDefault")
        #expect(container.securityContext.readOnlyRootFilesystem && !container.securityContext.allowPrivilegeEscalation)
        #expect(container.securityContext.capabilities.drop == ["ALL"])
        #expect(!pod.automountServiceAccountToken)
        #expect(cronJob.spec.jobTemplate.spec.backoffLimit == 1)
        #expect(cronJob.metadata.ownerReferences?.first?.kind == "BackupPolicy")
    }

    @Test("an environment that stores Secrets and ConfigMaps: selectors in the worker's variables, its pods run as the named account with a token; the others get none")
    func namespaceObjects() throws {
        var policy = try Self.example()
        policy.spec.objects = NamespaceObjects(
            secrets: .init(selector: LabelSelector(matchLabels: ["app": "shop"], matchExpressions: [.init(key: "tier", operator: "NotIn", values: ["test", "dev"])])),
            serviceAccountName: "backstop-objects")
        policy.spec.environments[2].objects = NamespaceObjects(configMaps: .init(selector: LabelSelector(matchExpressions: [.init(key: "backstop.dev/backup", operator: "Exists")])),
                                                               serviceAccountName: "dev-objects")
        let cronJobs = try CronJobBuilder(settings: .init(workerImage: "backstop:test")).cronJobs(for: policy)
        func variables(_ index: Int) -> [String: String] {
            Dictionary(uniqueKeysWithValues: cronJobs[index].spec.jobTemplate.spec.template.spec.containers[0].env.compactMap { variable in variable.value.map { (variable.name, $0) } })
        }
        #expect(variables(0)["BACKSTOP_SECRETS"] == "app=shop,tier notin (test,dev)" && variables(0)["BACKSTOP_CONFIG_MAPS"] == nil)
        #expect(variables(2)["BACKSTOP_CONFIG_MAPS"] == "backstop.dev/backup" && variables(2)["BACKSTOP_SECRETS"] == nil, "the environment's objects replace the policy's")
        let pods = cronJobs.map(\.spec.jobTemplate.spec.template.spec)
        #expect(pods[0].serviceAccountName == "backstop-objects" && pods[0].automountServiceAccountToken)
        #expect(pods[2].serviceAccountName == "dev-objects" && pods[2].automountServiceAccountToken)

        policy.spec.objects = nil
        policy.spec.environments[2].objects = nil
        #expect(try CronJobBuilder(settings: .init(workerImage: "backstop:test")).cronJobs(for: policy).allSatisfy {
            !$0.spec.jobTemplate.spec.template.spec.automountServiceAccountToken && $0.spec.jobTemplate.spec.template.spec.serviceAccountName == nil
        })
    }

    @Test("the objects and notifications example: production stores both kinds, staging its ConfigMaps only; two webhook targets")
    func objectsExample() throws {
        let file = "k8s/examples/backuppolicy-objects-notifications.yaml"
        let policy = try YAMLDecoder().decode(BackupPolicy.self, from: String(contentsOfFile: Self.root + "/" + file, encoding: .utf8), source: file)
        let environments = try policy.resolvedEnvironments()
        #expect(environments[0].objects?.selectors == [.secret: "app.kubernetes.io/part-of=orders", .configMap: "app.kubernetes.io/part-of in (orders)"])
        #expect(environments[1].objects?.selectors == [.configMap: "app.kubernetes.io/part-of=orders"])
        #expect(environments.allSatisfy { $0.objects?.serviceAccountName == "backstop-objects" })
        #expect(policy.spec.notifications?.map(\.name) == ["team-slack", "oncall"])
        #expect(policy.spec.notifications?[0].format == .slack && policy.spec.notifications?[1].wantedEvents == [.rpoBreached, .rtoBreached, .archivingStalled])
    }

    @Test("names longer than a CronJob may have are shortened with a stable hash")
    func names() {
        #expect(CronJobBuilder.name(policy: "orders", environment: "production") == "orders-production")
        let long = CronJobBuilder.name(policy: String(repeating: "p", count: 40), environment: "production-eu-west-1")
        #expect(long.count == 52)
        #expect(long == CronJobBuilder.name(policy: String(repeating: "p", count: 40), environment: "production-eu-west-1"))
        #expect(long != CronJobBuilder.name(policy: String(repeating: "p", count: 40), environment: "production-eu-west-2"))
    }

    @Test("jobTemplate reaches the pods: pull secrets, tolerations, affinity, priority class, labels and annotations (Backstop's labels win)")
    func podSettings() throws {
        var policy = try Self.example()
        let toleration: JSONValue = ["key": "dedicated", "operator": "Equal", "value": "backup", "effect": "NoSchedule"]
        let affinity: JSONValue = ["nodeAffinity": ["requiredDuringSchedulingIgnoredDuringExecution": ["nodeSelectorTerms": [
            ["matchExpressions": [["key": "pool", "operator": "In", "values": ["batch"]]]]]]]]
        policy.spec.jobTemplate = try JSONDecoder().decode(BackupPolicy.JobTemplate.self, from: JSONValue.object([
            "imagePullSecrets": [["name": "registry"]], "tolerations": [toleration], "affinity": affinity, "priorityClassName": "backups",
            "labels": ["team": "payments", CronJobBuilder.policyLabel: "not-this"], "annotations": ["sidecar.istio.io/inject": "false"],
        ]).encoded())
        let cronJob = try CronJobBuilder(settings: .init(workerImage: "w")).cronJobs(for: policy)[0]
        let template = cronJob.spec.jobTemplate.spec.template
        #expect(template.spec.imagePullSecrets?.map(\.name) == ["registry"])
        #expect(template.spec.tolerations == [toleration] && template.spec.affinity == affinity)
        #expect(template.spec.priorityClassName == "backups")
        #expect(template.metadata.labels["team"] == "payments" && template.metadata.labels[CronJobBuilder.policyLabel] == "orders")
        #expect(template.metadata.annotations == ["sidecar.istio.io/inject": "false"])
    }

    @Test("the spec-hash annotation names the desired state; without server support the time zone is left out")
    func specHash() throws {
        let policy = try Self.example()
        let builder = CronJobBuilder(settings: .init(workerImage: "w"))
        let zoned = try builder.cronJobs(for: policy)[0]
        let plain = try builder.cronJobs(for: policy, cronJobTimeZone: false)[0]
        #expect(zoned.spec.timeZone == "Europe/Berlin" && plain.spec.timeZone == nil)
        let hash = zoned.metadata.annotations?[CronJobBuilder.specHashAnnotation]
        #expect(hash?.count == 16 && hash != plain.metadata.annotations?[CronJobBuilder.specHashAnnotation])
        #expect(hash == (try builder.cronJobs(for: policy)[0]).metadata.annotations?[CronJobBuilder.specHashAnnotation], "stable")
        var changed = policy
        changed.spec.environments[0].schedule = "5 5 * * *"
        #expect(hash != (try builder.cronJobs(for: changed)[0]).metadata.annotations?[CronJobBuilder.specHashAnnotation])
    }

    @Test("the hand-written JSON form of every built object equals what JSONEncoder writes from its Codable form")
    func jsonFormsAgree() throws {
        var policy = try Self.example()
        policy.spec.jobTemplate = try JSONDecoder().decode(BackupPolicy.JobTemplate.self, from: JSONValue.object([
            "image": "registry.example/backstop:1", "imagePullSecrets": [["name": "registry"]], "serviceAccountName": "backups",
            "resources": ["requests": ["cpu": "100m", "memory": "128Mi"], "limits": ["memory": "1Gi"]], "nodeSelector": ["pool": "batch"],
            "tolerations": [["key": "dedicated", "operator": "Exists"]], "affinity": ["podAntiAffinity": [:]], "priorityClassName": "backups",
            "labels": ["team": "payments"], "annotations": ["sidecar.istio.io/inject": "false"], "activeDeadlineSeconds": 3600, "backoffLimit": 2,
        ]).encoded())
        let drillsPath = Self.root + "/k8s/examples/backuppolicy-drills.yaml"
        var drills = try YAMLDecoder().decode(BackupPolicy.self, from: try String(contentsOfFile: drillsPath, encoding: .utf8), source: drillsPath)
        drills.metadata.uid = "00000000-0000-4000-8000-000000000201"
        let built = try CronJobBuilder(settings: .init(workerImage: "w")).build(for: policy)
            + CronJobBuilder(settings: .init(workerImage: "w")).build(for: drills)
        #expect(built.count > 1 && built.contains { $0.cronJob.spec.jobTemplate.spec.template.spec.initContainers != nil })
        func viaJSONEncoder(_ value: some Encodable) throws -> JSONValue { try JSONValue.decode(try JSONEncoder().encode(value)) }
        for item in built {
            let expected = try viaJSONEncoder(item.cronJob)
            #expect(item.cronJob.jsonValue == expected)
            #expect(item.configuration == expected, "the apply configuration is the CronJob as built")
            let job = CronJobBuilder.runNowJob(from: item.cronJob, value: "2026-12-01T00:00:00Z")
            #expect(job.jsonValue == (try viaJSONEncoder(job)))
            #expect(try JSONValueEncoder().encode(job) == (try viaJSONEncoder(job)), "the encoder takes the hand-written form")
        }
    }
}
