#!/usr/bin/env bash
# Copies the one source of the CRDs (k8s/crds/) and of the alert rules (k8s/monitoring/) into
# the Helm chart, which can only read files inside itself. hack/chart-check.py fails when the
# copies differ: run this after changing either.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f charts/backstop/files/crds/*.yaml
cp k8s/crds/*.yaml charts/backstop/files/crds/
cp k8s/monitoring/backstop-alerts.yaml charts/backstop/files/backstop-alerts.yaml
echo "charts/backstop/files: $(ls charts/backstop/files/crds | wc -l) CRDs and the alert rules copied"
