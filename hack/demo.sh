#!/usr/bin/env bash
# The main job on a fresh machine: a throwaway PostgreSQL with a sample database, backed up
# to a local folder (file://), listed, verified, restored into a new database, row counts
# compared; then the same through S3 (a throwaway moto server). Then the product itself: the
# controller on the test Kubernetes API server, whose Jobs run the local worker binary — a
# BackupPolicy, a backup on demand, its status and logs, a restore drill, backstop doctor,
# and a BackupRestore. The backups
# live under ./demo; the servers' files in a temporary folder, and the servers stop at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh
echo "== building backstop"
swift build --product backstop 2>&1 | tail -n 1
swift build --product backstop-controller 2>&1 | tail -n 1
swift build --product kube-test-server 2>&1 | tail -n 1
bin="$(swift build --show-bin-path)"
backstop="$bin/backstop"

demo="$PWD/demo"
rm -rf "$demo"
mkdir -p "$demo"
# The server runs as the postgres user, who may not reach into the clone (a clone in /root or
# in a 0700 folder): its files go to a temporary folder that user can traverse.
services=$(mktemp -d /tmp/backstop-demo.XXXXXX)
chmod 755 "$services"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    hack/postgres.sh stop "$services/postgres" || true
    hack/moto.sh stop "$services/s3" || true
    rm -rf "$services"
}
trap cleanup EXIT
echo "== starting a throwaway PostgreSQL"
# An assignment, unlike eval "$(…)", fails the script when the server does not start.
server_env=$(hack/postgres.sh start "$services/postgres")
eval "$server_env"
createdb="$(dirname "$(ls /usr/lib/postgresql/*/bin/psql | sort -V | tail -n 1)")"
"$createdb/createdb" shop
"$createdb/psql" -q -v ON_ERROR_STOP=1 -d shop -f hack/sample-db.sql
echo "sample database 'shop' on port $PGPORT"

# A 32-byte key, base64 as a Kubernetes Secret would hold it.
openssl rand -base64 32 > "$demo/backup.key"
export BACKSTOP_STORAGE="file://$demo/backups"
export BACKSTOP_NAMESPACE=demo BACKSTOP_POLICY=shop BACKSTOP_ENVIRONMENT=development
export BACKSTOP_ENCRYPTION_KEY_FILE="$demo/backup.key"

echo "== backstop backup"
"$backstop" backup --database "dbname=shop"
echo "== backstop list"
"$backstop" list
echo "== backstop verify latest"
"$backstop" verify latest
echo "== backstop restore latest --target dbname=shop_restored"
"$backstop" restore latest --target "dbname=shop_restored"

compare_counts() {
    local restored=$1
    echo "== row counts, shop and $restored"
    query="SELECT 'shop.customers', count(*) FROM shop.customers UNION ALL SELECT 'shop.orders', count(*) FROM shop.orders UNION ALL SELECT 'audit.events', count(*) FROM audit.events"
    paste <("$createdb/psql" -tA -F ' ' -d shop -c "$query") <("$createdb/psql" -tA -F ' ' -d "$restored" -c "$query")
    if [ "$("$createdb/psql" -tA -d shop -c "$query")" = "$("$createdb/psql" -tA -d "$restored" -c "$query")" ]; then
        echo "row counts match"
    else
        echo "row counts differ" >&2
        exit 1
    fi
}
compare_counts shop_restored
echo "== stored objects"
find "$demo/backups" -type f | sed "s|$demo/||"

echo
echo "== the same through S3 (moto on loopback)"
s3_env=$(hack/moto.sh start "$services/s3")
eval "$s3_env"
export BACKSTOP_STORAGE=s3://demo-backups/clusters/local
export BACKSTOP_S3_ENDPOINT=$BACKSTOP_TEST_S3_ENDPOINT BACKSTOP_S3_PATH_STYLE=true
aws --endpoint-url "$BACKSTOP_S3_ENDPOINT" s3 mb s3://demo-backups >/dev/null
echo "== backstop backup (to $BACKSTOP_STORAGE)"
"$backstop" backup --database "dbname=shop"
"$backstop" list
"$backstop" verify latest
"$backstop" restore latest --target "dbname=shop_restored_s3"
compare_counts shop_restored_s3
echo "== stored objects"
aws --endpoint-url "$BACKSTOP_S3_ENDPOINT" s3 ls --recursive s3://demo-backups

echo
echo "== the product: backstop-controller on a test Kubernetes API server"
command -v kubectl >/dev/null || { echo "kubectl is not on PATH: install it to see the controller part" >&2; exit 1; }
unset BACKSTOP_STORAGE BACKSTOP_S3_ENDPOINT BACKSTOP_S3_PATH_STYLE BACKSTOP_NAMESPACE BACKSTOP_POLICY BACKSTOP_ENVIRONMENT BACKSTOP_ENCRYPTION_KEY_FILE
# Its Jobs' pods run the worker binary built above, with their env and Secrets, as a kubelet
# would run the image; kubectl logs shows their output.
"$bin/kube-test-server" --anonymous --run-jobs-with "$backstop" > "$services/kube-server" &
pids+=($!)
for _ in $(seq 50); do [ -s "$services/kube-server" ] && break; sleep 0.1; done
read -r kube_url kube_token < "$services/kube-server"
export KUBECONFIG="$services/kubeconfig"
cat > "$KUBECONFIG" <<CONFIG
apiVersion: v1
kind: Config
clusters: [{name: demo, cluster: {server: "$kube_url"}}]
users: [{name: admin, user: {token: "$kube_token"}}]
contexts: [{name: demo, context: {cluster: demo, user: admin, namespace: shop}}]
current-context: demo
CONFIG
kubectl() { command kubectl --cache-dir "$services/kube-cache" "$@"; }
# The test server serves no OpenAPI documents for kubectl's client-side validation: applies
# say --validate=false (the server itself checks each object against its schema).
echo "== kubectl apply -f k8s/crds/"
kubectl apply --validate=false -f k8s/crds/
# kubectl create sends built-in kinds as protobuf, which the test server does not read: the
# namespace and Secrets are rendered on the client and applied as JSON.
{
    kubectl create namespace shop --dry-run=client -o yaml
    echo ---
    kubectl create secret generic shop-db --from-literal=username="$PGUSER" --from-literal=password="$PGPASSWORD" --dry-run=client -o yaml
    echo ---
    kubectl create secret generic backup-key --from-file=key="$demo/backup.key" --dry-run=client -o yaml
} | kubectl apply --validate=false -f -

"$bin/backstop-controller" --worker-image backstop:demo --health-address 127.0.0.1:0 --leader-election false \
    > "$services/controller.log" 2>&1 &
pids+=($!)
echo "== kubectl apply -f policy.yaml (production: one environment, on the demo server)"
kubectl apply --validate=false -f - <<POLICY
apiVersion: backstop.dev/v1alpha1
kind: BackupPolicy
metadata: {name: shop}
spec:
  database: {host: 127.0.0.1, port: $PGPORT, name: shop, sslMode: disable, credentialsSecret: shop-db}
  encryption: {keySecret: {name: backup-key, key: key}}
  storage: {file: {path: "$demo/cluster-backups"}}
  environments:
  - name: production
    retention: {keep: {last: 7}}
    objectives: {rpo: 24h, rto: 1h}
    # Weekly restore drills into a scratch database on the demo server.
    drill:
      schedule: "0 5 * * 0"
      scratch: {database: {host: 127.0.0.1, port: $PGPORT, sslMode: disable, credentialsSecret: shop-db}}
POLICY
wait_for() {  # wait_for DESCRIPTION COMMAND…: until the command succeeds, at most a minute
    local what=$1; shift
    for _ in $(seq 600); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "timed out waiting for $what; the controller's log:" >&2
    cat "$services/controller.log" >&2
    exit 1
}
wait_for "the CronJob" kubectl get cronjob shop-production
kubectl get cronjobs
echo "== kubectl annotate bp shop backstop.dev/run-now=demo (a backup now, not at 02:00)"
kubectl annotate bp shop backstop.dev/run-now=demo
backed_up() { [ -n "$(kubectl get bp shop -o jsonpath='{.status.environments[0].lastSuccessfulBackup.id}{.status.environments[0].lastFailure.message}')" ]; }
wait_for "the backup" backed_up
kubectl get bp shop
job=$(kubectl get jobs -l backstop.dev/trigger=run-now -o jsonpath='{.items[0].metadata.name}')
echo "== kubectl logs job/$job"
kubectl logs "job/$job"
if [ -z "$(kubectl get bp shop -o jsonpath='{.status.environments[0].lastSuccessfulBackup.id}')" ]; then
    echo "the backup failed: $(kubectl get bp shop -o jsonpath='{.status.environments[0].lastFailure.message}')" >&2
    exit 1
fi

echo "== the weekly restore drill, now: kubectl create job --from=cronjob/shop-production-drill"
kubectl create job shop-drill-demo --from=cronjob/shop-production-drill --dry-run=client -o yaml | kubectl apply --validate=false -f -
drilled() { [ -n "$(kubectl get bp shop -o jsonpath='{.status.environments[0].lastDrill.outcome}')" ]; }
wait_for "the drill" drilled
kubectl logs job/shop-drill-demo
echo "lastDrill: $(kubectl get bp shop -o jsonpath='{.status.environments[0].lastDrill}')"
kubectl get bp shop -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.message}){"\n"}{end}'
echo "== kubectl get bp shop -o yaml | backstop doctor -f - (what the policy says, checked against the storage)"
kubectl get bp shop -o yaml | "$backstop" doctor -f - --encryption-key-file "$demo/backup.key"

echo "== kubectl apply -f restore.yaml (a BackupRestore of the newest production backup)"
kubectl apply --validate=false -f - <<RESTORE
apiVersion: backstop.dev/v1alpha1
kind: BackupRestore
metadata: {name: shop-check}
spec: {policy: shop, environment: production}
RESTORE
restored() { case "$(kubectl get br shop-check -o jsonpath='{.status.phase}')" in Succeeded|Failed) return 0;; *) return 1;; esac; }
wait_for "the restore" restored
kubectl get br -o wide
echo "== kubectl logs job/shop-check-restore"
kubectl logs job/shop-check-restore
[ "$(kubectl get br shop-check -o jsonpath='{.status.phase}')" = Succeeded ] \
    || { echo "the restore failed: $(kubectl get br shop-check -o jsonpath='{.status.message}')" >&2; exit 1; }
compare_counts "$(kubectl get br shop-check -o jsonpath='{.status.targetDatabase}')"
