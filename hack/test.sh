#!/usr/bin/env bash
# Installs what is missing, starts a throwaway PostgreSQL and S3 server (moto), runs
# `swift test`, stops them, and fails if any test failed or the integration tests did not run.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh
services=$(mktemp -d /tmp/backstop-test.XXXXXX)
chmod 755 "$services"  # the server runs as postgres and must reach its folder
trap 'hack/postgres.sh stop "$services/pg" || true; hack/moto.sh stop "$services/s3" || true; hack/moto.sh stop "$services/s3-auth" || true; hack/moto.sh stop "$services/s3-tls" || true; rm -rf "$services"' EXIT
# An assignment, unlike eval "$(…)", fails the script when a server does not start.
server_env=$(hack/postgres.sh start "$services/pg")
eval "$server_env"
s3_env=$(hack/moto.sh start "$services/s3")
eval "$s3_env"
s3_auth_env=$(hack/moto.sh start "$services/s3-auth" --auth)
eval "$s3_auth_env"
s3_tls_env=$(hack/moto.sh start "$services/s3-tls" --tls)
eval "$s3_tls_env"
export BACKSTOP_TEST_REQUIRE_INTEGRATION=1

swift build --build-tests
log="$services/test.log"
# The controller runtime's and reconciler's tests wait on leases, backoffs and watches in wall-clock time; they run on
# their own, after the rest, so CPU-heavy tests elsewhere cannot starve Swift's cooperative
# pool (one thread per core) under them.
timing="KubeRuntimeTests|ReconcilerTests"
set +e
swift test --skip-build --skip "$timing" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
swift test --skip-build --filter "$timing" 2>&1 | tee -a "$log"
timing_status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ] || [ "$timing_status" -ne 0 ]; then
    echo "hack/test.sh: swift test failed ($status, timing suites $timing_status)" >&2
    exit 1
fi
# The integration suites must have run against the servers, not been skipped.
for suite in "End to end against PostgreSQL" "S3Storage against moto" "Watcher, controller and leader election against the test API server" \
             "Data safety against PostgreSQL and storage" "The backstop command line against PostgreSQL" "Prune and the hash chain" \
             "The test API server answers as the recorded kube-apiserver" "The test API server's RBAC and printer columns" \
             "BackupPolicy reconciler against the test API server" "The controller on an API server that behaves like a real one" \
             "Planning a BackupPolicy's reconcile" "backstop-controller processes" "Invalid BackupPolicies through kubectl and the controller" \
             "JSON parsing, writing and encoding" "BackupPolicy CRD and example" \
             "Restoring in place of a database, and reading under a lease" "BackupRestore reconciler against the test API server" \
             "Restore Job builder" "The product end to end: controller, worker and PostgreSQL" "Restore drills against PostgreSQL" \
             "backstop doctor against PostgreSQL and storage" "The WAL archive: wal-push and wal-fetch" \
             "Continuous archiving against PostgreSQL" "Point-in-time recovery against PostgreSQL" \
             "Secrets and ConfigMaps in backups" "Notifications to webhooks"; do
    if ! grep -q "Suite \"$suite\" passed" "$log"; then
        echo "hack/test.sh: the suite \"$suite\" did not run" >&2
        exit 1
    fi
done
# Backstop's retention rules against restic's own (restic 0.18 from Debian 13's archive).
python3 hack/restic-oracle.py --check
# The alert rules with Prometheus' own tools: they load, and each fires (and does not) as meant.
promtool check rules k8s/monitoring/backstop-alerts.yaml
promtool test rules hack/alerts-test.yaml
# The Helm chart and the kustomize base with real Helm, the Kubernetes schemas, the CRDs and
# kubectl against the test API server.
python3 hack/chart-check.py "$(swift build --show-bin-path)/kube-test-server"
# The image's runtime stage in a Debian 13 root with pg_dump 17, against a PostgreSQL 17 server
# (debootstrap, chroot and mounts need root, as CI runs).
if [ "$(id -u)" = 0 ]; then
    hack/image-check.sh
else
    echo "hack/test.sh: hack/image-check.sh skipped: it needs root (CI runs it)" >&2
fi
echo "hack/test.sh: all tests passed"
