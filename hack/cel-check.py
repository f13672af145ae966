#!/usr/bin/env python3
"""Checks every CEL rule (x-kubernetes-validations) of the CRDs in k8s/crds twice, since no real
API server runs here:

1. Type-checked as the API server compiles it when the CRD is created: the schema becomes
   declared types (an object with properties is a message type, on which `size()` does not
   exist and `has(self.field)` does; a list is a list; additionalProperties is a map), and
   the rule is compiled against them with Google's CEL (PyPI cel-expr-python). A rule a real
   server would refuse (recording 04a: `found no matching overload for 'size'`) fails here.
2. Evaluated with cel-python against valid and invalid examples. A rule without examples
   below is an error: a new rule needs its cases.

    hack/cel-check.py   -> one line per rule and case; exit 1 on any refusal or wrong verdict
    hack/cel-check.py --self-test   -> proves the type check refuses size() on an object
"""
import glob
import os
import sys

import celpy
import yaml
from cel_expr_python import cel
from google.protobuf import descriptor_pb2, descriptor_pool, struct_pb2

FIELD = descriptor_pb2.FieldDescriptorProto

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# schema path -> (examples the rule must accept, examples it must reject)
CASES = {
    "backuppolicies.spec": (
        [{"storage": {"s3": {"bucket": "acme"}}, "environments": []},
         {"storage": {"file": {"path": "/backups"}}, "environments": []}],
        [{"storage": {}, "environments": []},
         {"storage": {"s3": {"bucket": "acme"}, "file": {"path": "/backups"}}, "environments": []}],
    ),
    "backuppolicies.spec#2": (
        [{"storage": {}, "environments": [{"name": "p"}]},
         {"storage": {}, "encryption": {"keySecret": {"name": "k"}}, "objects": {"serviceAccountName": "s"},
          "environments": [{"name": "p", "objects": {"serviceAccountName": "s"}}]}],
        [{"storage": {}, "objects": {"serviceAccountName": "s"}, "environments": [{"name": "p"}]},
         {"storage": {}, "environments": [{"name": "p"}, {"name": "q", "objects": {"serviceAccountName": "s"}}]}],
    ),
    "backuppolicies.spec.objects": (
        [{"serviceAccountName": "s", "secrets": {"selector": {"matchLabels": {"a": "b"}}}},
         {"serviceAccountName": "s", "configMaps": {"selector": {"matchLabels": {"a": "b"}}}}],
        [{"serviceAccountName": "s"}],
    ),
    "backuppolicies.spec.environments[].objects": (
        [{"serviceAccountName": "s", "secrets": {"selector": {"matchLabels": {"a": "b"}}}}],
        [{"serviceAccountName": "s"}],
    ),
    "backuppolicies.spec.encryption": (
        [{}, {"keySecret": {"name": "k"}}, {"passphraseSecret": {"name": "p"}}],
        [{"keySecret": {"name": "k"}, "passphraseSecret": {"name": "p"}}],
    ),
    "backuppolicies.spec.environments[].drill.scratch": (
        [{}, {"database": {"host": "scratch-db"}}, {"image": "postgres:17"}],
        [{"database": {"host": "scratch-db"}, "image": "postgres:17"}],
    ),
    "backuprestores.spec": (
        [{"policy": "orders", "environment": "production"},
         {"policy": "orders", "environment": "production", "mode": "NewDatabase"},
         {"policy": "orders", "environment": "production", "mode": "Replace", "confirm": "orders"}],
        [{"policy": "orders", "environment": "production", "mode": "Replace"}],
    ),
}


class DeclaredTypes:
    """The CEL types the API server declares for a structural schema, as protobuf messages."""

    def __init__(self):
        self.pool = descriptor_pool.DescriptorPool()
        self.pool.AddSerializedFile(struct_pb2.DESCRIPTOR.serialized_pb)
        self.file = descriptor_pb2.FileDescriptorProto(name="crd.proto", package="crd", syntax="proto3",
                                                       dependency=["google/protobuf/struct.proto"])
        self.names = set()

    def message(self, schema, name):
        """Declares a message for an object schema with properties; returns its full name."""
        while name in self.names:
            name += "_"
        self.names.add(name)
        message = self.file.message_type.add(name=name)
        for number, (field, child) in enumerate(sorted((schema.get("properties") or {}).items()), start=1):
            self.field(message, f"crd.{name}", field, child, number, name)
        return f"crd.{name}"

    def field(self, message, scope, field, schema, number, owner):
        """Declares `field` in `message` (whose full name is `scope`)."""
        kind = schema.get("type")
        entry = message.field.add(name=field, number=number, label=FIELD.LABEL_OPTIONAL)
        if kind == "array":
            entry.label = FIELD.LABEL_REPEATED
            schema = schema.get("items") or {}
            kind = schema.get("type")
            if kind == "array":  # a list of lists: as the server, untyped inside
                entry.type, entry.type_name = FIELD.TYPE_MESSAGE, ".google.protobuf.ListValue"
                return
        scalar = {"string": FIELD.TYPE_STRING, "integer": FIELD.TYPE_INT64, "number": FIELD.TYPE_DOUBLE, "boolean": FIELD.TYPE_BOOL}
        if schema.get("x-kubernetes-int-or-string"):
            entry.type, entry.type_name = FIELD.TYPE_MESSAGE, ".google.protobuf.Value"
        elif kind in scalar:
            entry.type = scalar[kind]
        elif kind == "object" and schema.get("properties"):
            entry.type, entry.type_name = FIELD.TYPE_MESSAGE, "." + self.message(schema, owner + field[:1].upper() + field[1:])
        elif kind == "object" and isinstance(schema.get("additionalProperties"), dict) and entry.label != FIELD.LABEL_REPEATED:
            map_entry = message.nested_type.add(name=field[:1].upper() + field[1:] + "Entry")
            map_entry.options.map_entry = True
            map_entry.field.add(name="key", number=1, type=FIELD.TYPE_STRING, label=FIELD.LABEL_OPTIONAL)
            value = schema["additionalProperties"]
            if value.get("type") == "array" or (value.get("type") == "object" and not value.get("properties")):
                # protobuf maps cannot hold lists or maps: those values stay untyped
                map_entry.field.add(name="value", number=2, label=FIELD.LABEL_OPTIONAL, type=FIELD.TYPE_MESSAGE,
                                    type_name=".google.protobuf.Value")
            else:
                self.field(map_entry, f"{scope}.{map_entry.name}", "value", value, 2, owner + field[:1].upper() + field[1:] + "Value")
            entry.label, entry.type = FIELD.LABEL_REPEATED, FIELD.TYPE_MESSAGE
            entry.type_name = f".{scope}.{map_entry.name}"
        else:  # an untyped object (preserve-unknown-fields): a map of anything
            entry.type, entry.type_name = FIELD.TYPE_MESSAGE, ".google.protobuf.Struct"

    def self_type(self, schema, name):
        """The type of `self` for a rule on `schema`."""
        kind = schema.get("type")
        if schema.get("x-kubernetes-int-or-string"):
            return cel.Type.DYN
        if kind == "object" and schema.get("properties"):
            return cel.Type(self.message(schema, name))
        if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
            return cel.Type.Map(cel.Type.STRING, self.self_type(schema["additionalProperties"], name + "Value"))
        if kind == "array":
            return cel.Type.List(self.self_type(schema.get("items") or {}, name + "Item"))
        return {"string": cel.Type.STRING, "integer": cel.Type.INT, "number": cel.Type.DOUBLE,
                "boolean": cel.Type.BOOL}.get(kind, cel.Type.DYN)

    def compile(self, schema, name, rule):
        """Compiles a rule as the API server would; returns None, or the compiler's error."""
        declared = self.self_type(schema, name)
        pool = descriptor_pool.DescriptorPool()
        pool.AddSerializedFile(struct_pb2.DESCRIPTOR.serialized_pb)
        pool.Add(self.file)
        environment = cel.NewEnv(descriptor_pool=pool, variables={"self": declared})
        try:
            environment.compile(rule)
            return None
        except Exception as error:  # the compiler's own message names the problem
            return str(error).splitlines()[0]


def type_check(schema, name, rule):
    return DeclaredTypes().compile(schema, name, rule)


def self_test():
    """The check must refuse what a real server refuses (recording 04a) and accept the rest."""
    keep = {"type": "object", "properties": {"within": {"type": "string"}, "daily": {"type": "integer"}}}
    refused = type_check(keep, "Keep", "size(self) > 0")
    accepted = type_check(keep, "Keep", "has(self.within) || has(self.daily)")
    labels = {"type": "object", "additionalProperties": {"type": "string"}}
    ok = refused is not None and "no matching overload for 'size'" in refused and accepted is None \
        and type_check(labels, "Labels", "size(self) <= 8") is None
    print(f"{'ok' if ok else 'WRONG'}  self-test: size(self) on an object is refused ({refused}); on a map it compiles")
    return ok


def rules(schema, path):
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule
    for name, child in (schema.get("properties") or {}).items():
        yield from rules(child, f"{path}.{name}")
    if "items" in schema:
        yield from rules(schema["items"], f"{path}[]")


def node(root, path, plural):
    """The schema node a rules() path names."""
    schema = root
    for part in path[len(plural):].split(".")[1:]:
        items = part.endswith("[]")
        schema = schema["properties"][part[:-2] if items else part]
        if items:
            schema = schema["items"]
    return schema


def main():
    if not self_test():
        sys.exit(1)
    if "--self-test" in sys.argv:
        sys.exit(0)
    environment = celpy.Environment()
    failures = 0
    seen = set()
    for file in sorted(glob.glob(os.path.join(ROOT, "k8s", "crds", "*.yaml"))):
        crd = yaml.safe_load(open(file))
        plural = crd["spec"]["names"]["plural"]
        for version in crd["spec"]["versions"]:
            root = version["schema"]["openAPIV3Schema"]
            at_path = {}
            for path, rule in rules(root, plural):
                # The second and later rules of one schema node are `path#2`, `path#3` …
                at_path[path] = at_path.get(path, 0) + 1
                key = path if at_path[path] == 1 else f"{path}#{at_path[path]}"
                seen.add(key)
                problem = type_check(node(root, path, plural), "Self", rule["rule"])
                if problem:
                    print(f"REFUSED  {key}: {rule['rule']} does not compile as the API server types it: {problem}")
                    failures += 1
                    continue
                print(f"ok  {key}: {rule['rule']} type-checks")
                if key not in CASES:
                    print(f"NO CASES for the rule at {key}: {rule['rule']}")
                    failures += 1
                    continue
                program = environment.program(environment.compile(rule["rule"]))
                accept, reject = CASES[key]
                for expected, examples in ((True, accept), (False, reject)):
                    for example in examples:
                        verdict = bool(program.evaluate({"self": celpy.json_to_cel(example)}))
                        status = "ok" if verdict == expected else "WRONG"
                        failures += verdict != expected
                        print(f"{status}  {key}: {rule['rule']}  on {example} -> {verdict} (want {expected})")
    for key in sorted(set(CASES) - seen):
        print(f"STALE cases for {key}: no such rule any more")
        failures += 1
    print(f"{failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
