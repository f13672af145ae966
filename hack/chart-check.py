#!/usr/bin/env python3
"""Checks the Helm chart and the kustomize base with real tools, offline (hack/test.sh runs it):

- the chart's copies of the CRDs and alert rules equal their one source (k8s/crds, k8s/monitoring);
- Helm v4 (PyPI helm-python-sdk): values.yaml and an all-options values file pass
  values.schema.json, wrong values are refused naming the key, `helm lint --strict` is clean,
  and the chart renders with default values and with every optional part on;
- every rendered built-in object is valid against the Kubernetes schemas (PyPI
  kubernetes-validate, strict: no unknown fields); the chart's CRDs equal those of
  `kubectl kustomize k8s`; the examples validate against their CRD's openAPIV3Schema
  (jsonschema), built-in kinds among them against Kubernetes' own; the PrometheusRule's groups are the rules file's, and promtool accepts them;
- the rendered chart and the kustomize base apply to the test API server with kubectl.

Usage: hack/chart-check.py KUBE_TEST_SERVER_BINARY
"""
import copy
import glob
import json
import os
import subprocess
import sys
import tempfile

import helm_python
import jsonschema
import kubernetes_validate
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CHART = os.path.join(ROOT, "charts", "backstop")
KUBERNETES = "1.30.0"
failures = []


def check(ok, message):
    print(f"{'ok' if ok else 'FAILED'}  {message}")
    if not ok:
        failures.append(message)


def documents(text):
    return [d for d in yaml.safe_load_all(text) if d]


def render(values):
    chart = helm_python.Chart.load(CHART)
    try:
        rendered = chart.render(values=values, name="backstop", namespace="backstop-system", is_install=True)
    finally:
        chart.close()
    return [d for path, text in sorted(rendered.items()) if path.endswith(".yaml") for d in documents(text)]


def all_options():
    values = yaml.safe_load(open(os.path.join(CHART, "values.yaml")))
    values["image"]["digest"] = "sha256:" + "ab" * 32
    values["imagePullSecrets"] = [{"name": "registry"}]
    values["serviceAccount"]["annotations"] = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/backstop"}
    values["controller"].update(watchNamespaces=["shop", "billing"], nodeSelector={"pool": "system"},
                                tolerations=[{"key": "dedicated", "operator": "Exists"}], priorityClassName="system-cluster-critical",
                                podAnnotations={"example.com/team": "platform"}, affinity={"podAntiAffinity": {}})
    values["worker"]["image"] = "registry.example/backstop-worker:0.1.0"
    values["notifications"]["secretNames"] = ["backstop-slack", "backstop-oncall"]
    for part in ("serviceMonitor", "prometheusRule", "dashboard"):
        values["metrics"][part]["enabled"] = True
    values["metrics"]["serviceMonitor"]["labels"] = {"release": "prometheus"}
    return values


def check_copies():
    for source in sorted(glob.glob(os.path.join(ROOT, "k8s", "crds", "*.yaml"))):
        copied = os.path.join(CHART, "files", "crds", os.path.basename(source))
        same = os.path.exists(copied) and open(source, "rb").read() == open(copied, "rb").read()
        check(same, f"charts/backstop/files/crds/{os.path.basename(source)} equals k8s/crds (else run hack/chart-sync.sh)")
    check(sorted(os.listdir(os.path.join(CHART, "files", "crds"))) == sorted(os.listdir(os.path.join(ROOT, "k8s", "crds"))),
          "the chart holds exactly the CRDs of k8s/crds")
    rules = os.path.join(ROOT, "k8s", "monitoring", "backstop-alerts.yaml")
    check(open(rules, "rb").read() == open(os.path.join(CHART, "files", "backstop-alerts.yaml"), "rb").read(),
          "charts/backstop/files/backstop-alerts.yaml equals k8s/monitoring (else run hack/chart-sync.sh)")


def check_values():
    chart = helm_python.Chart.load(CHART)
    try:
        for name, values in (("values.yaml", None), ("every option on", all_options())):
            try:
                chart.validate_schema(values)
                check(True, f"{name} passes values.schema.json")
            except helm_python.HelmValuesError as error:
                check(False, f"{name} passes values.schema.json: {error}")
        wrong = [
            ({"controller": {"replicas": "two"}}, "replicas"),
            ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
            ({"controller": {"logFormat": "xml"}}, "logFormat"),
            ({"metrics": {"serviceMonitor": {"interval": "soon"}}}, "interval"),
            ({"controller": {"watchNamespaces": ["Shop"]}}, "watchNamespaces"),
            ({"contoller": {"replicas": 1}}, "contoller"),
        ]
        for values, key in wrong:
            try:
                chart.validate_schema(values)
                check(False, f"values {values} are refused")
            except helm_python.HelmValuesError as error:
                check(key in str(error), f"values {values} are refused naming {key}: {str(error).splitlines()[0][:160]}")
    finally:
        chart.close()
    for name, values in (("default values", None), ("every option on", all_options())):
        report = helm_python.lint(CHART, values, strict=True, kube_version="v" + KUBERNETES)
        problems = report.get("errors", []) + [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
        check(not problems, f"helm lint --strict with {name}: {problems or 'clean'}")


def validate_builtin(obj, where):
    try:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        return True
    except kubernetes_validate.ValidationError as error:
        check(False, f"{where}: {obj['kind']} {obj['metadata']['name']} against the Kubernetes {KUBERNETES} schema: {error.message}")
    except kubernetes_validate.SchemaNotFoundError:
        check(False, f"{where}: no Kubernetes schema for {obj['apiVersion']} {obj['kind']}")
    return False


def crd_schema(crd):
    """A CRD's openAPIV3Schema as JSON Schema (the x-kubernetes-* keywords are ignored)."""
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


# What the prometheus-operator's CRDs require of the fields the chart sets (their CRDs are not
# reachable offline here; these follow monitoring.coreos.com/v1's API reference).
SERVICE_MONITOR = {
    "type": "object", "required": ["spec"],
    "properties": {"spec": {"type": "object", "required": ["selector", "endpoints"], "properties": {
        "selector": {"type": "object", "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "namespaceSelector": {"type": "object", "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}}},
        "endpoints": {"type": "array", "minItems": 1, "items": {"type": "object", "properties": {
            "port": {"type": "string"}, "path": {"type": "string"}, "interval": {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}},
            "additionalProperties": False}}}, "additionalProperties": False}}}
PROMETHEUS_RULE = {
    "type": "object", "required": ["spec"],
    "properties": {"spec": {"type": "object", "properties": {"groups": {"type": "array", "items": {
        "type": "object", "required": ["name", "rules"], "properties": {
            "name": {"type": "string", "minLength": 1},
            "rules": {"type": "array", "items": {"type": "object", "required": ["expr"], "properties": {
                "alert": {"type": "string"}, "record": {"type": "string"}, "expr": {"type": ["string", "integer"]},
                "for": {"type": "string"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}}}, "additionalProperties": False}}}}}},
        "additionalProperties": False}}}


def check_rendered(objects, where, kustomize_crds):
    kinds = sorted(o["kind"] for o in objects)
    for obj in objects:
        if obj["kind"] == "CustomResourceDefinition":
            name = obj["metadata"]["name"]
            if where.startswith("chart"):
                check(obj["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep", f"{where}: CRD {name} is kept on uninstall")
            check(obj["spec"] == kustomize_crds.get(name, {}).get("spec"), f"{where}: CRD {name} equals the kustomize base's")
            jsonschema.Draft7Validator.check_schema(crd_schema(obj))
        elif obj["kind"] == "ServiceMonitor":
            jsonschema.validate(obj, SERVICE_MONITOR)
            check(True, f"{where}: ServiceMonitor {obj['metadata']['name']} is a valid ServiceMonitor")
        elif obj["kind"] == "PrometheusRule":
            jsonschema.validate(obj, PROMETHEUS_RULE)
            rules = yaml.safe_load(open(os.path.join(ROOT, "k8s", "monitoring", "backstop-alerts.yaml")))
            check(obj["spec"] == rules, f"{where}: the PrometheusRule holds the rules file's groups")
            with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
                yaml.safe_dump(obj["spec"], file)
                file.flush()
                result = subprocess.run(["promtool", "check", "rules", file.name], capture_output=True, text=True)
                check(result.returncode == 0, f"{where}: promtool check rules accepts the PrometheusRule ({result.stdout.strip().splitlines()[-1]})")
        elif obj["kind"] == "ConfigMap" and "backstop.json" in obj.get("data", {}):
            json.loads(obj["data"]["backstop.json"])
            check(validate_builtin(obj, where), f"{where}: the dashboard ConfigMap is valid and holds the dashboard's JSON")
        else:
            check(validate_builtin(obj, where), f"{where}: {obj['kind']} {obj['metadata']['name']} is valid Kubernetes {KUBERNETES}")
    return kinds


def check_examples(crds):
    schemas = {crd["spec"]["names"]["kind"]: crd_schema(crd) for crd in crds.values()}
    for path in sorted(glob.glob(os.path.join(ROOT, "k8s", "examples", "*.yaml"))):
        for obj in documents(open(path).read()):
            where = os.path.relpath(path, ROOT)
            if obj["kind"] not in schemas:
                # Built-in kinds beside the resources (a StatefulSet that archives its WAL).
                check(validate_builtin(obj, where), f"{where}: {obj['kind']} {obj['metadata']['name']} is valid Kubernetes {KUBERNETES}")
                continue
            try:
                jsonschema.validate(obj, schemas[obj["kind"]])
                check(True, f"{os.path.relpath(path, ROOT)}: {obj['kind']} {obj['metadata']['name']} is valid against its CRD")
            except jsonschema.ValidationError as error:
                check(False, f"{os.path.relpath(path, ROOT)}: {obj['kind']} {obj['metadata']['name']}: {error.message} at {list(error.absolute_path)}")


def apply_to_test_server(server_binary, manifests):
    """kubectl apply of each manifest set to a fresh test API server."""
    for name, objects in manifests:
        server = subprocess.Popen([server_binary, "--anonymous"], stdout=subprocess.PIPE, text=True)
        try:
            url = server.stdout.readline().split()[0]
            with tempfile.TemporaryDirectory() as cache:
                def kubectl(arguments, text):
                    return subprocess.run(["kubectl", "--server", url, "--cache-dir", cache] + arguments, input=text, capture_output=True, text=True)
                # The operator's CRDs, as a cluster running it has them, and the release namespace.
                setup = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "backstop-system"}}] + [
                    {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                     "metadata": {"name": f"{plural}.monitoring.coreos.com"},
                     "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                              "names": {"plural": plural, "singular": plural[:-1], "kind": kind},
                              "versions": [{"name": "v1", "served": True, "storage": True,
                                            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
                    for plural, kind in (("servicemonitors", "ServiceMonitor"), ("prometheusrules", "PrometheusRule"))]
                result = kubectl(["apply", "--validate=false", "-f", "-"], yaml.safe_dump_all(setup))
                check(result.returncode == 0, f"{name}: the test server takes the namespace and monitoring CRDs ({result.stderr.strip()})")
                # CRDs first, as `helm install` and `kubectl apply -k` order them.
                ordered = sorted(objects, key=lambda o: o["kind"] != "CustomResourceDefinition")
                crds = [o for o in ordered if o["kind"] == "CustomResourceDefinition"]
                rest = [o for o in ordered if o["kind"] != "CustomResourceDefinition"]
                for part in (crds, rest):
                    if not part:
                        continue
                    result = kubectl(["apply", "--validate=false", "-n", "backstop-system", "-f", "-"], yaml.safe_dump_all(part))
                    check(result.returncode == 0, f"{name}: kubectl apply of {len(part)} objects to the test API server"
                          + ("" if result.returncode == 0 else f": {result.stderr.strip()}"))
                examples = "".join(open(path).read() + "\n---\n" for path in sorted(glob.glob(os.path.join(ROOT, "k8s", "examples", "*.yaml"))))
                if crds:
                    kubectl(["apply", "--validate=false", "-f", "-"], yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
                    result = kubectl(["apply", "--validate=false", "-f", "-"], examples)
                    check(result.returncode == 0, f"{name}: the examples apply against its CRDs" + ("" if result.returncode == 0 else f": {result.stderr.strip()}"))
        finally:
            server.terminate()
            server.wait()


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(64)
    check_copies()
    check_values()
    kustomized = documents(subprocess.run(["kubectl", "kustomize", os.path.join(ROOT, "k8s")], capture_output=True, text=True, check=True).stdout)
    crds = {o["metadata"]["name"]: o for o in kustomized if o["kind"] == "CustomResourceDefinition"}
    check_rendered(kustomized, "kustomize k8s", crds)
    default = render(None)
    kinds = check_rendered(default, "chart, default values", crds)
    check(kinds == sorted(["ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "CustomResourceDefinition", "Deployment",
                           "Role", "Role", "RoleBinding", "RoleBinding", "Service", "ServiceAccount"]), f"chart, default values: renders {kinds}")
    # Secrets: get, in the release's namespace only (notification webhooks), never cluster-wide.
    secret_rules = [(o["kind"], o["metadata"].get("namespace"), r) for o in default for r in o.get("rules", []) if "secrets" in r.get("resources", [])]
    check(len(secret_rules) == 1 and secret_rules[0][0] == "Role" and secret_rules[0][2]["verbs"] == ["get"],
          f"chart: the controller may only get Secrets, in its own namespace: {secret_rules}")
    full = render(all_options())
    kinds = check_rendered(full, "chart, every option on", crds)
    check({"ServiceMonitor", "PrometheusRule", "ConfigMap"} <= set(kinds), f"chart, every option on: renders the optional parts ({kinds})")
    named = [r for o in full for r in o.get("rules", []) if "secrets" in r.get("resources", [])]
    check(named and named[0].get("resourceNames") == ["backstop-slack", "backstop-oncall"],
          f"notifications.secretNames narrows the controller's Secret access to them: {named}")
    deployment = next(o for o in full if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    check(container["image"] == "ghcr.io/backstop/backstop@sha256:" + "ab" * 32, f"the digest wins over the tag: {container['image']}")
    environment = {e["name"]: e.get("value") for e in container["env"]}
    check(environment.get("BACKSTOP_WATCH_NAMESPACES") == "shop,billing", "watched namespaces reach the controller")
    check("registry.example/backstop-worker:0.1.0" in container["args"], "the worker image reaches the controller")
    no_crds = render({"crds": {"create": False}, "rbac": {"create": False}, "serviceAccount": {"create": False}, "metrics": {"service": {"enabled": False}}})
    check(sorted(o["kind"] for o in no_crds) == ["Deployment"], f"crds, rbac, serviceAccount and the Service can be left out: {[o['kind'] for o in no_crds]}")
    check_examples(crds)
    apply_to_test_server(sys.argv[1], [("chart, every option on", full), ("kustomize k8s", kustomized)])
    print(f"{len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
