internal import Foundation
internal import KubeObjects

/// What the real API server fills into the built-in kinds a controller writes (recordings 00,
/// 01, 02): defaults, canonical quantities, the Pod admission's service account and
/// tolerations, and Go's zero values (`creationTimestamp: null` in templates, `status: {}`);
/// then, on create only, what the kind's strategy adds (a Job's selector and labels, a
/// Namespace's finalizer). A client that compares whole objects with what it sent sees all of
/// this as drift, as it would on a cluster.
///
/// The two steps are apart because the real server records managedFields between them:
/// defaults are owned by the writer's `Update` entry, the strategy's additions by nobody.
enum BuiltInDefaults {
    /// What a create adds after managedFields are recorded (the registry's PrepareForCreate).
    static func prepareForCreate(_ object: inout JSONValue, kind: String, uid: String) {
        switch kind {
        case "Job":
            guard var spec = object["spec"], spec["manualSelector"] != .bool(true) else { return }
            spec["selector"] = ["matchLabels": ["controller-uid": .string(uid)]]
            var labels = spec[path: "template.metadata.labels"]?.object ?? [:]
            labels["controller-uid"] = .string(uid)
            labels["job-name"] = object[path: "metadata.name"] ?? .string("")
            spec["template"]?["metadata"]?["labels"] = .object(labels)
            object["spec"] = spec
            var annotations = object[path: "metadata.annotations"]?.object ?? [:]
            annotations["batch.kubernetes.io/job-tracking"] = annotations["batch.kubernetes.io/job-tracking"] ?? ""
            object["metadata"]?["annotations"] = .object(annotations)
        case "Namespace":
            object["spec"] = ["finalizers": ["kubernetes"]]
            object["status"] = ["phase": "Active"]
        default:
            break
        }
    }

    /// Fills `object` of `kind` in place with the scheme's defaults. `cronJobTimeZone` is false
    /// on servers that drop `spec.timeZone` (v1.24).
    static func apply(to object: inout JSONValue, kind: String, cronJobTimeZone: Bool) {
        switch kind {
        case "Secret":
            // core/v1 conversion: stringData overwrites data's keys and is never stored or
            // returned; SetDefaults_Secret: type Opaque.
            if let strings = object["stringData"]?.object {
                var data = object["data"]?.object ?? [:]
                for (key, value) in strings { data[key] = .string(Data((value.string ?? "").utf8).base64EncodedString()) }
                object["data"] = .object(data)
                object["stringData"] = nil
            }
            fill(&object, "type", "Opaque")
        case "Namespace":
            var labels = object[path: "metadata.labels"]?.object ?? [:]
            labels["kubernetes.io/metadata.name"] = object[path: "metadata.name"] ?? .null
            object["metadata"]?["labels"] = .object(labels)
        case "CronJob":
            var spec = object["spec"] ?? .object([:])
            if !cronJobTimeZone { spec["timeZone"] = nil }
            fill(&spec, "suspend", false)
            fill(&spec, "concurrencyPolicy", "Allow")
            fill(&spec, "successfulJobsHistoryLimit", 3)
            fill(&spec, "failedJobsHistoryLimit", 1)
            var template = spec["jobTemplate"] ?? .object([:])
            template["metadata"] = zeroTime(template["metadata"])
            var jobSpec = template["spec"] ?? .object([:])
            podTemplate(&jobSpec, restartPolicy: nil)
            template["spec"] = jobSpec
            spec["jobTemplate"] = template
            object["spec"] = spec
            fill(&object, "status", .object([:]))
        case "Job":
            var spec = object["spec"] ?? .object([:])
            fill(&spec, "parallelism", 1)
            fill(&spec, "completions", 1)
            fill(&spec, "backoffLimit", 6)
            fill(&spec, "completionMode", "NonIndexed")
            fill(&spec, "suspend", false)
            podTemplate(&spec, restartPolicy: nil)
            object["spec"] = spec
            fill(&object, "status", .object([:]))
        case "Deployment":
            var spec = object["spec"] ?? .object([:])
            fill(&spec, "replicas", 1)
            fill(&spec, "revisionHistoryLimit", 10)
            fill(&spec, "progressDeadlineSeconds", 600)
            fill(&spec, "strategy", ["type": "RollingUpdate", "rollingUpdate": ["maxUnavailable": "25%", "maxSurge": "25%"]])
            podTemplate(&spec, restartPolicy: "Always")
            object["spec"] = spec
            fill(&object, "status", .object([:]))
        case "StatefulSet":
            // pkg/apis/apps/v1/defaults.go SetDefaults_StatefulSet as of v1.24 (the PVC
            // retention policy and maxUnavailable are behind gates that are off there).
            var spec = object["spec"] ?? .object([:])
            fill(&spec, "podManagementPolicy", "OrderedReady")
            fill(&spec, "updateStrategy", ["type": "RollingUpdate", "rollingUpdate": [:]])
            if spec[path: "updateStrategy.type"] == "RollingUpdate", spec[path: "updateStrategy.rollingUpdate"] != nil {
                fill(&spec["updateStrategy"]!["rollingUpdate"]!, "partition", 0)
            }
            fill(&spec, "replicas", 1)
            fill(&spec, "revisionHistoryLimit", 10)
            podTemplate(&spec, restartPolicy: "Always")
            object["spec"] = spec
            fill(&object, "status", .object([:]))
        case "Pod":
            var spec = object["spec"] ?? .object([:])
            podSpec(&spec, restartPolicy: "Always")
            // The ServiceAccount admission plugin, and the default tolerations.
            fill(&spec, "serviceAccountName", "default")
            spec["serviceAccount"] = spec["serviceAccountName"]
            fill(&spec, "priority", 0)
            fill(&spec, "enableServiceLinks", true)
            fill(&spec, "preemptionPolicy", "PreemptLowerPriority")
            fill(&spec, "tolerations", [
                ["key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300],
                ["key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300],
            ])
            object["spec"] = spec
            var status = object["status"] ?? .object([:])
            fill(&status, "phase", "Pending")
            object["status"] = status
        case "Service":
            var spec = object["spec"] ?? .object([:])
            fill(&spec, "type", "ClusterIP")
            fill(&spec, "sessionAffinity", "None")
            if let ports = spec["ports"]?.array {
                spec["ports"] = .array(ports.map { port in
                    var port = port
                    fill(&port, "protocol", "TCP")
                    fill(&port, "targetPort", port["port"] ?? .null)
                    return port
                })
            }
            object["spec"] = spec
            fill(&object, "status", ["loadBalancer": [:]])
        default:
            break
        }
    }

    /// `spec.template` of a Job or Deployment: Go's zero creation time, and the Pod spec's defaults.
    private static func podTemplate(_ spec: inout JSONValue, restartPolicy: String?) {
        var template = spec["template"] ?? .object([:])
        template["metadata"] = zeroTime(template["metadata"])
        var pod = template["spec"] ?? .object([:])
        podSpec(&pod, restartPolicy: restartPolicy ?? "Always")
        template["spec"] = pod
        spec["template"] = template
    }

    private static func podSpec(_ spec: inout JSONValue, restartPolicy: String) {
        fill(&spec, "restartPolicy", .string(restartPolicy))
        fill(&spec, "terminationGracePeriodSeconds", 30)
        fill(&spec, "dnsPolicy", "ClusterFirst")
        fill(&spec, "securityContext", .object([:]))
        fill(&spec, "schedulerName", "default-scheduler")
        for list in ["containers", "initContainers"] {
            guard let containers = spec[list]?.array else { continue }
            spec[list] = .array(containers.map(container))
        }
        if let volumes = spec["volumes"]?.array {
            spec["volumes"] = .array(volumes.map { volume in
                var volume = volume
                for source in ["secret", "configMap", "projected", "downwardAPI"] where volume[source] != nil {
                    var inner = volume[source] ?? .object([:])
                    fill(&inner, "defaultMode", 420)
                    volume[source] = inner
                }
                return volume
            })
        }
    }

    private static func container(_ container: JSONValue) -> JSONValue {
        var container = container
        fill(&container, "terminationMessagePath", "/dev/termination-log")
        fill(&container, "terminationMessagePolicy", "File")
        let image = container["image"]?.string ?? ""
        let tag = image.split(separator: "/").last.flatMap { $0.contains(":") ? $0.split(separator: ":").last : nil }
        fill(&container, "imagePullPolicy", .string(tag == nil || tag == "latest" ? "Always" : "IfNotPresent"))
        if let resources = container["resources"] { container["resources"] = canonicalQuantities(resources) }
        if let env = container["env"]?.array {
            container["env"] = .array(env.map { variable in
                var variable = variable
                if var field = variable[path: "valueFrom.fieldRef"], field["apiVersion"] == nil {
                    field["apiVersion"] = "v1"
                    variable["valueFrom"]?["fieldRef"] = field
                }
                return variable
            })
        }
        return container
    }

    private static func zeroTime(_ metadata: JSONValue?) -> JSONValue {
        var metadata = metadata ?? .object([:])
        if metadata["creationTimestamp"] == nil { metadata["creationTimestamp"] = .null }
        return metadata
    }

    private static func fill(_ object: inout JSONValue, _ key: String, _ value: JSONValue) {
        if object[key] == nil { object[key] = value }
    }

    /// What a client's config looks like once stored: quantities canonical (for comparing an
    /// apply's values with the stored ones).
    static func canonicalQuantities(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(var fields):
            for (key, child) in fields {
                if key == "requests" || key == "limits", let values = child.object {
                    fields[key] = .object(values.mapValues { value in value.string.flatMap(Quantity.canonical).map { .string($0) } ?? value })
                } else {
                    fields[key] = canonicalQuantities(child)
                }
            }
            return .object(fields)
        case .array(let items):
            return .array(items.map(canonicalQuantities))
        default:
            return value
        }
    }
}
