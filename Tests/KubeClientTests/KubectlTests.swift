import Foundation
import KubeClient
import KubeTestServer
import TestSupport
import Testing

/// kubectl is in the image (DESIGN §5): the test server must serve it as a real one would.
@Suite("kubectl against the test API server")
struct KubectlTests {
    /// Runs kubectl against `server`; its exit status and combined output.
    func kubectl(_ server: TestAPIServer, _ arguments: [String], input: String? = nil) async throws -> (status: Int32, output: String) {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("kubectl-cache-\(server.port)").path
        let result = try await ToolProcess.run("kubectl", ["--server", server.url, "--cache-dir", cache] + arguments,
                                               input: input ?? "", mergingErrors: true)
        return (result.status, result.output)
    }

    static let crd = """
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: backuppolicies.backstop.dev}
        spec:
          group: backstop.dev
          scope: Namespaced
          names: {plural: backuppolicies, singular: backuppolicy, kind: BackupPolicy, shortNames: [bp]}
          versions:
          - name: v1alpha1
            served: true
            storage: true
            subresources: {status: {}}
            schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
            additionalPrinterColumns:
            - {name: Schedule, type: string, jsonPath: .spec.schedule}
            - {name: Last Backup, type: string, jsonPath: '.status.environments[0].lastBackup'}
        """
    static let policy = """
        apiVersion: backstop.dev/v1alpha1
        kind: BackupPolicy
        metadata: {name: orders, namespace: default, labels: {team: shop}}
        spec: {schedule: "0 2 * * *"}
        """

    @Test("apply (first and again), get, get by short name, delete")
    func applyGetDelete() async throws {
        guard (try? await kubectl(try TestAPIServer(allowAnonymous: true), ["version", "--client"]))?.status == 0 else {
            Issue.record("kubectl is not installed; the image has it (DESIGN §5)")
            return
        }
        let server = try TestAPIServer(token: "unused", allowAnonymous: true)
        defer { server.stop() }
        var result = try await kubectl(server, ["apply", "--validate=false", "-f", "-"], input: Self.crd)
        #expect(result.status == 0, "\(result.output)")
        result = try await kubectl(server, ["apply", "--validate=false", "-f", "-"], input: Self.policy)
        #expect(result.status == 0 && result.output.contains("backuppolicy.backstop.dev/orders created"), "\(result.output)")
        result = try await kubectl(server, ["apply", "--validate=false", "-f", "-"], input: Self.policy.replacingOccurrences(of: "0 2 * * *", with: "0 3 * * *"))
        #expect(result.status == 0 && result.output.contains("configured"), "\(result.output)")
        result = try await kubectl(server, ["get", "bp", "orders", "-o", "jsonpath={.spec.schedule} {.metadata.generation}"])
        #expect(result.output == "0 3 * * * 2", "\(result.output)")
        result = try await kubectl(server, ["get", "backuppolicies", "-l", "team=shop"])
        let lines = result.output.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        // Name and the declared columns only: the server adds Age to a CRD that declares none.
        #expect(lines.first == "NAME SCHEDULE LAST BACKUP", "printer columns show: \(result.output)")
        #expect(lines.dropFirst().first?.hasPrefix("orders 0 3 * * *") == true, "\(result.output)")
        // A built-in kind: re-applying a CronJob with one container changed is a strategic merge.
        let cronJob = """
            apiVersion: batch/v1
            kind: CronJob
            metadata: {name: orders-production, namespace: default}
            spec:
              schedule: "0 2 * * *"
              jobTemplate:
                spec:
                  template:
                    spec:
                      restartPolicy: Never
                      containers:
                      - name: worker
                        image: backstop:1
                        args: [backup]
                        env: [{name: A, value: "1"}, {name: B, value: "2"}]
                      - name: sidecar
                        image: proxy:1
            """
        result = try await kubectl(server, ["apply", "--validate=false", "-f", "-"], input: cronJob)
        #expect(result.status == 0, "\(result.output)")
        result = try await kubectl(server, ["apply", "--validate=false", "-f", "-"],
                             input: cronJob.replacingOccurrences(of: "backstop:1", with: "backstop:2").replacingOccurrences(of: "value: \"2\"", with: "value: \"3\""))
        #expect(result.status == 0, "\(result.output)")
        result = try await kubectl(server, ["get", "cronjob", "orders-production", "-o",
                                      "jsonpath={.spec.jobTemplate.spec.template.spec.containers[*].name} {.spec.jobTemplate.spec.template.spec.containers[0].image} {.spec.jobTemplate.spec.template.spec.containers[0].env[*].value} {.spec.jobTemplate.spec.template.spec.containers[0].args[0]}"])
        #expect(result.output == "worker sidecar backstop:2 1 3 backup", "\(result.output)")

        result = try await kubectl(server, ["delete", "backuppolicy", "orders"])
        #expect(result.status == 0, "\(result.output)")
        #expect(server.object(.backupPolicies, namespace: "default", name: "orders") == nil)
    }
}
