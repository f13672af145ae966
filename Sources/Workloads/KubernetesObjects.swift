public import KubeObjects

/// The slices of the Kubernetes API the builders produce, as plain Codable values: enough for
/// CronJobs and Jobs that run the worker, nothing the controller does not set. Metadata is
/// the shared `ObjectMeta`.
public struct CronJob: Codable, Sendable, Hashable {
    public struct Spec: Codable, Sendable, Hashable {
        public var schedule: String
        /// Nil for API servers that do not serve it (before 1.25): they would drop it, or
        /// refuse an apply that carries it.
        public var timeZone: String?
        public var suspend: Bool
        public var concurrencyPolicy: String
        public var startingDeadlineSeconds: Int?
        public var successfulJobsHistoryLimit: Int
        public var failedJobsHistoryLimit: Int
        public var jobTemplate: JobTemplate
    }
    public struct JobTemplate: Codable, Sendable, Hashable {
        public var metadata: TemplateMetadata
        public var spec: Job.Spec
    }
    public var apiVersion = "batch/v1"
    public var kind = "CronJob"
    public var metadata: ObjectMeta
    public var spec: Spec
}

public struct Job: Codable, Sendable, Hashable {
    public struct Spec: Codable, Sendable, Hashable {
        public var backoffLimit: Int
        public var activeDeadlineSeconds: Int?
        public var ttlSecondsAfterFinished: Int?
        public var template: PodTemplate
    }
    public var apiVersion = "batch/v1"
    public var kind = "Job"
    public var metadata: ObjectMeta
    public var spec: Spec
}

public struct TemplateMetadata: Codable, Sendable, Hashable {
    public var labels: [String: String]
    public var annotations: [String: String]?

    public init(labels: [String: String], annotations: [String: String]? = nil) {
        self.labels = labels
        self.annotations = annotations
    }
}

public struct PodTemplate: Codable, Sendable, Hashable {
    public var metadata: TemplateMetadata
    public var spec: PodSpec
}

public struct PodSpec: Codable, Sendable, Hashable {
    public struct SecurityContext: Codable, Sendable, Hashable {
        public struct Seccomp: Codable, Sendable, Hashable { public var type: String }
        public var runAsNonRoot: Bool
        public var runAsUser: Int
        public var runAsGroup: Int
        public var fsGroup: Int
        public var seccompProfile: Seccomp
    }
    public struct LocalObjectReference: Codable, Sendable, Hashable { public var name: String }
    public var serviceAccountName: String?
    public var automountServiceAccountToken: Bool
    public var restartPolicy: String
    public var securityContext: SecurityContext
    public var imagePullSecrets: [LocalObjectReference]?
    public var nodeSelector: [String: String]?
    /// The user's, as written: Kubernetes' own shapes, passed through.
    public var tolerations: [JSONValue]?
    public var affinity: JSONValue?
    public var priorityClassName: String?
    /// Run before the containers; one with `restartPolicy: Always` is a native sidecar
    /// (Kubernetes 1.29+): it keeps running beside them and stops after them.
    public var initContainers: [Container]?
    public var containers: [Container]
    public var volumes: [Volume]
}

public struct Container: Codable, Sendable, Hashable {
    public struct SecurityContext: Codable, Sendable, Hashable {
        public struct Capabilities: Codable, Sendable, Hashable { public var drop: [String] }
        public var allowPrivilegeEscalation: Bool
        public var readOnlyRootFilesystem: Bool
        public var runAsNonRoot: Bool
        public var capabilities: Capabilities
    }
    public struct Resources: Codable, Sendable, Hashable {
        public var requests: [String: String]?
        public var limits: [String: String]?
    }
    /// A command run in the container; ready (or started) when it exits 0.
    public struct Probe: Codable, Sendable, Hashable {
        public struct Exec: Codable, Sendable, Hashable { public var command: [String] }
        public var exec: Exec
        public var periodSeconds: Int
        public var failureThreshold: Int
    }
    public var name: String
    public var image: String
    public var args: [String]
    public var env: [EnvVar]
    public var resources: Resources?
    public var securityContext: SecurityContext
    public var terminationMessagePolicy: String
    public var volumeMounts: [VolumeMount]
    /// `Always` on an init container makes it a native sidecar.
    public var restartPolicy: String? = nil
    public var startupProbe: Probe? = nil
}

public struct EnvVar: Codable, Sendable, Hashable {
    public struct Source: Codable, Sendable, Hashable {
        public struct SecretKey: Codable, Sendable, Hashable { public var name: String; public var key: String }
        public struct Field: Codable, Sendable, Hashable { public var fieldPath: String }
        public var secretKeyRef: SecretKey?
        public var fieldRef: Field?
    }
    public var name: String
    public var value: String?
    public var valueFrom: Source?

    static func plain(_ name: String, _ value: String) -> EnvVar { EnvVar(name: name, value: value) }
    static func secret(_ name: String, secret: String, key: String) -> EnvVar {
        EnvVar(name: name, valueFrom: .init(secretKeyRef: .init(name: secret, key: key)))
    }
    static func field(_ name: String, _ path: String) -> EnvVar {
        EnvVar(name: name, valueFrom: .init(fieldRef: .init(fieldPath: path)))
    }
}

public struct VolumeMount: Codable, Sendable, Hashable {
    public var name: String
    public var mountPath: String
    public var readOnly: Bool?
}

public struct Volume: Codable, Sendable, Hashable {
    public struct SecretSource: Codable, Sendable, Hashable { public var secretName: String; public var defaultMode: Int? }
    public struct EmptyDir: Codable, Sendable, Hashable { public var sizeLimit: String? }
    public struct Claim: Codable, Sendable, Hashable { public var claimName: String }
    public var name: String
    public var secret: SecretSource?
    public var emptyDir: EmptyDir?
    public var persistentVolumeClaim: Claim?
}

// The same objects written straight as JSON (`JSONValueEncodable`): the controller builds a
// CronJob per environment on every pass, and the generic `Encodable` path was a sixth of its
// CPU. WorkloadsTests checks that each form equals what `JSONEncoder` writes.

extension CronJob: JSONValueEncodable {
    public var jsonValue: JSONValue {
        .fields(["apiVersion": apiVersion.jsonValue, "kind": kind.jsonValue, "metadata": metadata.jsonValue, "spec": spec.jsonValue])
    }
}

extension CronJob.Spec: JSONValueEncodable {
    public var jsonValue: JSONValue {
        .fields([
            "schedule": schedule.jsonValue, "timeZone": timeZone?.jsonValue, "suspend": suspend.jsonValue,
            "concurrencyPolicy": concurrencyPolicy.jsonValue, "startingDeadlineSeconds": startingDeadlineSeconds?.jsonValue,
            "successfulJobsHistoryLimit": successfulJobsHistoryLimit.jsonValue, "failedJobsHistoryLimit": failedJobsHistoryLimit.jsonValue,
            "jobTemplate": jobTemplate.jsonValue,
        ])
    }
}

extension CronJob.JobTemplate: JSONValueEncodable {
    public var jsonValue: JSONValue { .fields(["metadata": metadata.jsonValue, "spec": spec.jsonValue]) }
}

extension Job: JSONValueEncodable {
    public var jsonValue: JSONValue {
        .fields(["apiVersion": apiVersion.jsonValue, "kind": kind.jsonValue, "metadata": metadata.jsonValue, "spec": spec.jsonValue])
    }
}

extension Job.Spec: JSONValueEncodable {
    public var jsonValue: JSONValue {
        .fields([
            "backoffLimit": backoffLimit.jsonValue, "activeDeadlineSeconds": activeDeadlineSeconds?.jsonValue,
            "ttlSecondsAfterFinished": ttlSecondsAfterFinished?.jsonValue, "template": template.jsonValue,
        ])
    }
}

extension TemplateMetadata: JSONValueEncodable {
    public var jsonValue: JSONValue { .fields(["labels": labels.jsonValue, "annotations": annotations?.jsonValue]) }
}

extension PodTemplate: JSONValueEncodable {
    public var jsonValue: JSONValue { .fields(["metadata": metadata.jsonValue, "spec": spec.jsonValue]) }
}

extension PodSpec: JSONValueEncodable {
    public var jsonValue: JSONValue {
        .fields([
            "serviceAccountName": serviceAccountName?.jsonValue, "automountServiceAccountToken": automountServiceAccountToken.jsonValue,
            "restartPolicy": restartPolicy.jsonValue, "securityContext": securityContext.jsonValue,
            "imagePullSecrets": imagePullSecrets?.jsonValue, "nodeSelector": nodeSelector?.jsonValue,
            "tolerations": tolerations?.jsonValue, "affinity": affinity, "priorityClassName": priorityClassName?.jsonValue,
            "initContainers": initContainers?.jsonValue, "containers": containers.jsonValue, "volumes": volumes.jsonValue,
        ])
    }
}

extension PodSpec.SecurityContext: JSONValueEncodable {
    public var jsonValue: JSONValue {
        .fields([
            "runAsNonRoot": runAsNonRoot.jsonValue, "runAsUser": runAsUser.jsonValue, "runAsGroup": runAsGroup.jsonValue,
            "fsGroup": fsGroup.jsonValue, "seccompProfile": .fields(["type": seccompProfile.type.jsonValue]),
        ])
    }
}

extension PodSpec.LocalObjectReference: JSONValueEncodable {
    public var jsonValue: JSONValue { .fields(["name": name.jsonValue]) }
}

extension Container: JSONValueEncodable {
    public var jsonValue: JSONValue {
        .fields([
            "name": name.jsonValue, "image": image.jsonValue, "args": args.jsonValue, "env": env.jsonValue,
            "resources": resources.map { .fields(["requests": $0.requests?.jsonValue, "limits": $0.limits?.jsonValue]) },
            "securityContext": .fields([
                "allowPrivilegeEscalation": securityContext.allowPrivilegeEscalation.jsonValue,
                "readOnlyRootFilesystem": securityContext.readOnlyRootFilesystem.jsonValue,
                "runAsNonRoot": securityContext.runAsNonRoot.jsonValue,
                "capabilities": .fields(["drop": securityContext.capabilities.drop.jsonValue]),
            ]),
            "terminationMessagePolicy": terminationMessagePolicy.jsonValue, "volumeMounts": volumeMounts.jsonValue,
            "restartPolicy": restartPolicy?.jsonValue,
            "startupProbe": startupProbe.map { probe in
                .fields(["exec": .fields(["command": probe.exec.command.jsonValue]), "periodSeconds": probe.periodSeconds.jsonValue,
                         "failureThreshold": probe.failureThreshold.jsonValue])
            },
        ])
    }
}

extension EnvVar: JSONValueEncodable {
    public var jsonValue: JSONValue {
        .fields([
            "name": name.jsonValue, "value": value?.jsonValue,
            "valueFrom": valueFrom.map { source in
                .fields([
                    "secretKeyRef": source.secretKeyRef.map { .fields(["name": $0.name.jsonValue, "key": $0.key.jsonValue]) },
                    "fieldRef": source.fieldRef.map { .fields(["fieldPath": $0.fieldPath.jsonValue]) },
                ])
            },
        ])
    }
}

extension VolumeMount: JSONValueEncodable {
    public var jsonValue: JSONValue {
        .fields(["name": name.jsonValue, "mountPath": mountPath.jsonValue, "readOnly": readOnly?.jsonValue])
    }
}

extension Volume: JSONValueEncodable {
    public var jsonValue: JSONValue {
        .fields([
            "name": name.jsonValue,
            "secret": secret.map { .fields(["secretName": $0.secretName.jsonValue, "defaultMode": $0.defaultMode?.jsonValue]) },
            "emptyDir": emptyDir.map { .fields(["sizeLimit": $0.sizeLimit?.jsonValue]) },
            "persistentVolumeClaim": persistentVolumeClaim.map { .fields(["claimName": $0.claimName.jsonValue]) },
        ])
    }
}
