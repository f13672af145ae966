#!/usr/bin/env bash
# The main job on a fresh machine: a throwaway PostgreSQL with a sample database, backed up
# to a local folder (file://), listed, verified, restored into a new database, row counts
# compared; then the same through S3 (a throwaway moto server). The backups live under
# ./demo; the servers' files in a temporary folder, and the servers stop at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh
echo "== building backstop"
swift build --product backstop 2>&1 | tail -n 1
backstop="$(swift build --show-bin-path)/backstop"

demo="$PWD/demo"
rm -rf "$demo"
mkdir -p "$demo"
# The server runs as the postgres user, who may not reach into the clone (a clone in /root or
# in a 0700 folder): its files go to a temporary folder that user can traverse.
services=$(mktemp -d /tmp/backstop-demo.XXXXXX)
chmod 755 "$services"
trap 'hack/postgres.sh stop "$services/postgres" || true; hack/moto.sh stop "$services/s3" || true; rm -rf "$services"' EXIT
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
