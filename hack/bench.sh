#!/usr/bin/env bash
# Speed and memory of `backstop backup` against the dump alone and the seeds' pipelines,
# measured side by side in one run (alternating, median of ROUNDS), for each scale given:
# to a local folder against `pg_dump | gzip > file`, and to S3 (moto on loopback) against
# seed 003's `pg_dump | gzip | aws s3 cp -`. moto is slow and shares the two cores, so the
# S3 ratios to the dump alone carry no target.
#   hack/bench.sh [scale ...]     pgbench scales (default 50); ROUNDS=3 by default
# Two scales show whether the worker's memory stays flat as the database grows.
# Then hack/bench-physical.sh: physical base backups against pgBackRest, and wal-push latency.
set -euo pipefail
cd "$(dirname "$0")/.."
scales=("${@:-50}")
rounds=${ROUNDS:-3}

hack/install-deps.sh
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }
swift build -c release --product backstop 2>&1 | tail -n 1
backstop="$(swift build -c release --show-bin-path)/backstop"
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

work=$(mktemp -d /tmp/backstop-bench.XXXXXX)
chmod 755 "$work"  # the server runs as postgres and must reach its folder
trap 'hack/postgres.sh stop "$work/pg" || true; hack/moto.sh stop "$work/s3" || true; rm -rf "$work"' EXIT
# An assignment, unlike eval "$(…)", fails the script when the server does not start.
server_env=$(hack/postgres.sh start "$work/pg")
eval "$server_env"
s3_env=$(hack/moto.sh start "$work/s3")
eval "$s3_env"
aws --endpoint-url "$BACKSTOP_TEST_S3_ENDPOINT" s3 mb s3://bench >/dev/null
s3_options="--s3-endpoint $BACKSTOP_TEST_S3_ENDPOINT --s3-path-style"
measure() {
  local scale=$1
  "$bin/dropdb" --if-exists bench
  "$bin/createdb" bench
  "$bin/pgbench" -q -i -s "$scale" bench >/dev/null 2>&1
  # Random text so the data does not compress trivially.
  "$bin/psql" -q -d bench -c "CREATE EXTENSION IF NOT EXISTS pgcrypto" \
    -c "CREATE TABLE noise AS SELECT i, encode(gen_random_bytes(64), 'base64') || md5(random()::text) AS t FROM generate_series(1, $((scale * 20000))) i" \
    -c "VACUUM ANALYZE"
  size=$("$bin/psql" -tA -d bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")

  # name -> command; each prints nothing on stdout.
  declare -A commands=(
    [dump]="$bin/pg_dump -Fc -Z0 bench > /dev/null"
    [seed-gzip]="$bin/pg_dump bench | gzip > $work/seed.sql.gz"
    [backstop]="$backstop backup --storage file://$work/store1 --database dbname=bench > /dev/null 2>&1"
    [backstop-zstd3]="$backstop backup --storage file://$work/store3 --database dbname=bench --level 3 > /dev/null 2>&1"
    [backstop-zstd9]="$backstop backup --storage file://$work/store9 --database dbname=bench --level 9 > /dev/null 2>&1"
    [seed-s3]="$bin/pg_dump bench | gzip | aws --endpoint-url $BACKSTOP_TEST_S3_ENDPOINT s3 cp - s3://bench/seed/bench.sql.gz"
    [backstop-s3]="$backstop backup --storage s3://bench/backstop $s3_options --database dbname=bench > /dev/null 2>&1"
  )
  order=(dump seed-gzip backstop backstop-zstd3 backstop-zstd9 seed-s3 backstop-s3)
  for name in "${order[@]}"; do : > "$work/$name.times"; rm -f "$work/$name.stored" "$work/$name.size"; done
  for round in $(seq "$rounds"); do
    for name in "${order[@]}"; do
      rm -rf "$work"/store*/ 2>/dev/null || true
      aws --endpoint-url "$BACKSTOP_TEST_S3_ENDPOINT" s3 rm --recursive --quiet s3://bench/ >/dev/null 2>&1 || true
      /usr/bin/time -f "%e %U %S %M" -o "$work/one" bash -c "${commands[$name]}"
      cat "$work/one" >> "$work/$name.times"
      case "$name" in
        seed-gzip) stat -c %s "$work/seed.sql.gz" > "$work/$name.size" ;;
        seed-s3)
          aws --endpoint-url "$BACKSTOP_TEST_S3_ENDPOINT" s3api head-object --bucket bench --key seed/bench.sql.gz \
            --query ContentLength --output text > "$work/$name.size" ;;
        backstop-s3)
          aws --endpoint-url "$BACKSTOP_TEST_S3_ENDPOINT" s3 ls --recursive s3://bench/backstop/ | awk '/data.dump/ {print $3}' > "$work/$name.size"
          aws --endpoint-url "$BACKSTOP_TEST_S3_ENDPOINT" s3 cp --quiet \
            "s3://bench/$(aws --endpoint-url "$BACKSTOP_TEST_S3_ENDPOINT" s3 ls --recursive s3://bench/backstop/ | awk '/manifest.json/ {print $4}')" "$work/manifest.json"
          python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["durationSeconds"])' "$work/manifest.json" >> "$work/$name.stored" ;;
        backstop*)
          find "$work"/store* -name 'data.dump*' -printf '%s\n' | head -n 1 > "$work/$name.size"
          # The manifest's duration ends when the dump is stored; the read-back and commit follow.
          python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["durationSeconds"])' \
            "$(find "$work"/store* -name manifest.json | head -n 1)" >> "$work/$name.stored" ;;
      esac
    done
  done

  median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  base=$(awk '{print $1}' "$work/dump.times" | median)
  echo
  echo "scale $scale: $size"
  printf '%-16s %9s %9s %9s %11s %12s %16s\n' command wall_s cpu_s ratio peak_rss_MiB stored_MiB stored_at_s_ratio
  for name in "${order[@]}"; do
    wall=$(awk '{print $1}' "$work/$name.times" | median)
    cpu=$(awk '{print $2 + $3}' "$work/$name.times" | median)
    rss=$(awk '{print $4}' "$work/$name.times" | median)
    stored=$([ -f "$work/$name.size" ] && awk '{printf "%.1f", $1 / 1048576}' "$work/$name.size" || echo -)
    stored_at=-
    if [ -f "$work/$name.stored" ]; then
      at=$(median < "$work/$name.stored")
      stored_at=$(awk -v a="$at" -v b="$base" 'BEGIN {printf "%.2f (%.2f)", a, a / b}')
    fi
    printf '%-16s %9s %9s %9.2f %11.1f %12s %16s\n' "$name" "$wall" "$cpu" "$(awk -v w="$wall" -v b="$base" 'BEGIN {print w / b}')" \
      "$(awk -v r="$rss" 'BEGIN {print r / 1024}')" "$stored" "$stored_at"
  done
  seed_s3=$(awk '{print $1}' "$work/seed-s3.times" | median)
  backstop_s3=$(awk '{print $1}' "$work/backstop-s3.times" | median)
  seed_local=$(awk '{print $1}' "$work/seed-gzip.times" | median)
  backstop_local=$(awk '{print $1}' "$work/backstop.times" | median)
  awk -v a="$seed_local" -v b="$backstop_local" -v c="$seed_s3" -v d="$backstop_s3" \
    'BEGIN {printf "backstop is %.2fx faster than pg_dump | gzip > file, %.2fx faster than pg_dump | gzip | aws s3 cp\n", a / b, c / d}'
}

for scale in "${scales[@]}"; do measure "$scale"; done

# The controller's informer: list+watch of 3,000 objects from the test API server.
swift build -c release --product kube-test-server 2>&1 | tail -n 1
swift build -c release --product kube-bench 2>&1 | tail -n 1
bin_path=$(swift build -c release --show-bin-path)
"$bin_path/kube-test-server" bench-token > "$work/kube-server" &
kube_server=$!
for _ in $(seq 50); do [ -s "$work/kube-server" ] && break; sleep 0.1; done
read -r kube_url kube_token < "$work/kube-server"
echo
"$bin_path/kube-bench" "$kube_url" "$kube_token" 3000
kill "$kube_server"

# The controller from a cold start: 1,000 policies × 3 environments (targets on an idle machine:
# ≤ 6 s and ≤ 40 MiB; the controller's own CPU seconds show how much of the time was its own).
# Built as the Dockerfile ships it (Swift runtime linked in statically), in a build folder of
# its own so the dynamic release build above is not redone.
swift build -c release --static-swift-stdlib --scratch-path .build-static --product backstop-controller 2>&1 | tail -n 1
for crd in backuppolicy backuprestore; do
    python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' "k8s/crds/$crd.yaml" > "$work/$crd.json"
done
: > "$work/kube-server"
"$bin_path/kube-test-server" bench-token > "$work/kube-server" &
kube_server=$!
for _ in $(seq 50); do [ -s "$work/kube-server" ] && break; sleep 0.1; done
read -r kube_url kube_token < "$work/kube-server"
"$bin_path/kube-bench" "$kube_url" "$kube_token" controller 1000 "$(swift build -c release --scratch-path .build-static --show-bin-path)/backstop-controller" \
    "$work/backuppolicy.json" "$work/backuprestore.json"
kill "$kube_server"
echo
echo "ratio: wall time / the dump alone. stored_at: seconds until the dump was stored (the manifest's"
echo "duration), before the read-back that proves it. Peak RSS is the largest process of each command:"
echo "for backstop, the worker itself."

# Physical base backups against pgBackRest and pg_basebackup | zstd, and wal-push latency
# against pgbackrest archive-push (its own cluster; needs root).
if [ "$(id -u)" = 0 ]; then
    hack/bench-physical.sh "${scales[0]}"
else
    echo "(physical backups and WAL pushes: run as root for hack/bench-physical.sh)"
fi
