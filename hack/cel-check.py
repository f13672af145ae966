#!/usr/bin/env python3
"""Evaluates every CEL rule (x-kubernetes-validations) of the CRDs in k8s/crds with cel-python
against valid and invalid examples, since no real API server runs here. A rule without
examples below is an error: a new rule needs its cases.

    hack/cel-check.py   -> one line per case; exit 1 on any wrong verdict
"""
import glob
import os
import sys

import celpy
import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# schema path -> (examples the rule must accept, examples it must reject)
CASES = {
    "backuppolicies.spec": (
        [{"storage": {"s3": {"bucket": "acme"}}, "environments": []},
         {"storage": {"file": {"path": "/backups"}}, "environments": []}],
        [{"storage": {}, "environments": []},
         {"storage": {"s3": {"bucket": "acme"}, "file": {"path": "/backups"}}, "environments": []}],
    ),
    "backuppolicies.spec.encryption": (
        [{}, {"keySecret": {"name": "k"}}, {"passphraseSecret": {"name": "p"}}],
        [{"keySecret": {"name": "k"}, "passphraseSecret": {"name": "p"}}],
    ),
}


def rules(schema, path):
    for rule in schema.get("x-kubernetes-validations", []):
        yield path, rule
    for name, child in (schema.get("properties") or {}).items():
        yield from rules(child, f"{path}.{name}")
    if "items" in schema:
        yield from rules(schema["items"], f"{path}[]")


def main():
    environment = celpy.Environment()
    failures = 0
    seen = set()
    for file in sorted(glob.glob(os.path.join(ROOT, "k8s", "crds", "*.yaml"))):
        crd = yaml.safe_load(open(file))
        plural = crd["spec"]["names"]["plural"]
        for version in crd["spec"]["versions"]:
            root = version["schema"]["openAPIV3Schema"]
            for path, rule in rules(root, plural):
                key = path.replace(f"{plural}.spec", f"{plural}.spec", 1)
                seen.add(key)
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
