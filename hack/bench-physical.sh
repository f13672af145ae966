#!/usr/bin/env bash
# Physical backups and WAL archiving, side by side in one run (median of ROUNDS), on one
# cluster that archives through both tools (archive_command pushes with backstop, then with
# pgBackRest):
#  - a full base backup to a local folder: backstop backup --physical (zstd level 3) against
#    pgBackRest's backup --type=full (zstd level 3, process-max 2, a local repository), and
#    against pg_basebackup -Ft -D - -X none | zstd -3 > file (the method's own limit);
#  - pushing 16 MiB WAL segments of that cluster: backstop wal-push to a folder and to S3
#    (moto), against pgbackrest archive-push to a fresh repository: p50 and p99 per segment.
#   hack/bench-physical.sh [scale]   pgbench scale (default 50); ROUNDS=3 by default
# Run by hack/bench.sh; needs root (the cluster runs as postgres, and pgBackRest must read
# its files as that user).
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-50}
rounds=${ROUNDS:-3}
[ "$(id -u)" = 0 ] || { echo "hack/bench-physical.sh: run as root" >&2; exit 1; }
command -v pgbackrest >/dev/null || apt-get install -y -qq pgbackrest >/dev/null
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
swift build -c release --product backstop 2>&1 | tail -n 1
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

work=$(mktemp -d /tmp/backstop-bench-physical.XXXXXX)
chmod 755 "$work"
install -m 0755 "$(swift build -c release --show-bin-path)/backstop" "$work/backstop"
backstop=$work/backstop
as_postgres() { (cd / && runuser -u postgres -- "$@"); }
cleanup() {
    as_postgres "$bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
    hack/moto.sh stop "$work/s3" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
s3_env=$(hack/moto.sh start "$work/s3")
eval "$s3_env"
aws --endpoint-url "$BACKSTOP_TEST_S3_ENDPOINT" s3 mb s3://bench >/dev/null

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
install -d -o postgres "$work/data" "$work/archive" "$work/pgbackrest" "$work/pgbackrest-push" "$work/spool"
chmod 700 "$work/data"
chown postgres "$work"
openssl rand -base64 32 > "$work/key"
chown postgres "$work/key"
chmod 600 "$work/key"
location="--storage file://$work/archive --environment bench --encryption-key-file $work/key"
cat > "$work/pgbackrest.conf" <<CONF
[global]
repo1-path=$work/pgbackrest
compress-type=zst
compress-level=3
repo1-retention-full=9999
process-max=2
start-fast=y
log-level-console=warn
log-level-file=off
spool-path=$work/spool
[bench]
pg1-path=$work/data
pg1-port=$port
pg1-socket-path=$work
CONF
chmod 644 "$work/pgbackrest.conf"
sed "s|repo1-path=$work/pgbackrest|repo1-path=$work/pgbackrest-push|" "$work/pgbackrest.conf" > "$work/pgbackrest-push.conf"
chmod 644 "$work/pgbackrest-push.conf"

as_postgres "$bin/initdb" -D "$work/data" -U postgres --auth=trust >/dev/null
cat >> "$work/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$work'
wal_level = replica
archive_mode = on
archive_command = '$backstop wal-push %p $location --level 3 && pgbackrest --config=$work/pgbackrest.conf --stanza=bench archive-push %p'
max_wal_size = 4GB
CONF
as_postgres "$bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w start >/dev/null
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
as_postgres pgbackrest --config="$work/pgbackrest.conf" --stanza=bench stanza-create
as_postgres pgbackrest --config="$work/pgbackrest-push.conf" --stanza=bench stanza-create
"$bin/pgbench" -q -i -s "$scale" postgres >/dev/null 2>&1
"$bin/psql" -q -c "CREATE EXTENSION IF NOT EXISTS pgcrypto" \
    -c "CREATE TABLE noise AS SELECT i, encode(gen_random_bytes(64), 'base64') || md5(random()::text) AS t FROM generate_series(1, $((scale * 20000))) i" \
    -c "CHECKPOINT"
size=$("$bin/psql" -tA -c "SELECT pg_size_pretty(sum(pg_database_size(oid))) FROM pg_database")

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A commands=(
    [pgbackrest]="runuser -u postgres -- pgbackrest --config=$work/pgbackrest.conf --stanza=bench backup --type=full"
    [backstop]="$backstop backup --physical $location --level 3 --database 'host=127.0.0.1 port=$port user=postgres dbname=postgres' > /dev/null 2>&1"
    [basebackup-zstd]="$bin/pg_basebackup -h 127.0.0.1 -p $port -U postgres -Ft -D - -X none -c fast 2>/dev/null | zstd -q -3 > $work/base.tar.zst"
)
order=(pgbackrest backstop basebackup-zstd)
for name in "${order[@]}"; do : > "$work/$name.times"; done
for round in $(seq "$rounds"); do
    for name in "${order[@]}"; do
        (cd / && /usr/bin/time -f "%e %U %S %M" -o "$work/one" bash -c "${commands[$name]}")
        cat "$work/one" >> "$work/$name.times"
    done
done
stored_backstop=$(find "$work/archive" -path '*backups*' -name 'base.tar*' -printf '%s\n' | sort -n | tail -n 1)
stored_pgbackrest=$(du -sb "$work/pgbackrest/backup" | awk '{print $1}')
stored_pgbackrest=$((stored_pgbackrest / rounds))
stored_zstd=$(stat -c %s "$work/base.tar.zst")
base=$(awk '{print $1}' "$work/pgbackrest.times" | median)
echo
echo "physical base backup, scale $scale: $size in the cluster"
printf '%-16s %9s %9s %9s %11s %12s\n' command wall_s cpu_s ratio peak_rss_MiB stored_MiB
for name in "${order[@]}"; do
    wall=$(awk '{print $1}' "$work/$name.times" | median)
    cpu=$(awk '{print $2 + $3}' "$work/$name.times" | median)
    rss=$(awk '{print $4}' "$work/$name.times" | median)
    case $name in
        pgbackrest) stored=$stored_pgbackrest ;;
        backstop) stored=$stored_backstop ;;
        *) stored=$stored_zstd ;;
    esac
    printf '%-16s %9s %9s %9.2f %11.1f %12.1f\n' "$name" "$wall" "$cpu" "$(awk -v w="$wall" -v b="$base" 'BEGIN {print w / b}')" \
        "$(awk -v r="$rss" 'BEGIN {print r / 1024}')" "$(awk -v s="$stored" 'BEGIN {print s / 1048576}')"
done
echo "ratio: wall time / pgBackRest's (target: backstop <= 1.0 at the same zstd level, stored no larger)"

# Real segments of this cluster (pgBackRest checks a segment's header against the cluster).
"$bin/pgbench" -T 20 -c 2 postgres >/dev/null 2>&1 || true
"$bin/psql" -q -c "CHECKPOINT" >/dev/null
install -d -o postgres "$work/segments/pg_wal"
find "$work/data/pg_wal" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}' -printf '%f\n' | sort | head -n 40 | while read -r segment; do
    cp "$work/data/pg_wal/$segment" "$work/segments/pg_wal/$segment"
done
chown -R postgres "$work/segments"
count=$(ls "$work/segments/pg_wal" | wc -l)
push_times() {  # name, then the command with {} for the segment
    local name=$1; shift
    : > "$work/push-$name.times"
    for segment in $(ls "$work/segments/pg_wal"); do
        local start end
        start=$(date +%s.%N)
        (cd "$work/segments" && runuser -u postgres -- env AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
            AWS_REGION="$AWS_REGION" bash -c "${*//\{\}/$work/segments/pg_wal/$segment}" >/dev/null 2>&1) || { echo "$name: push of $segment failed" >&2; exit 1; }
        end=$(date +%s.%N)
        awk -v a="$start" -v b="$end" 'BEGIN {print (b - a) * 1000}' >> "$work/push-$name.times"
    done
}
install -d -o postgres "$work/push-archive"
push_times backstop-file "$backstop wal-push {} --storage file://$work/push-archive --environment push --encryption-key-file $work/key --level 3"
push_times backstop-s3 "$backstop wal-push {} --storage s3://bench/push --s3-endpoint $BACKSTOP_TEST_S3_ENDPOINT --s3-path-style --environment push --encryption-key-file $work/key --level 3"
push_times pgbackrest "pgbackrest --config=$work/pgbackrest-push.conf --stanza=bench --archive-async=n archive-push {}"
percentile() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100 + 0.999); if (i < 1) i = 1; printf "%.0f", a[i]}'; }
echo
echo "WAL push of $count segments of 16 MiB, one call each, ms"
printf '%-16s %9s %9s\n' command p50_ms p99_ms
for name in backstop-file backstop-s3 pgbackrest; do
    printf '%-16s %9s %9s\n' "$name" "$(percentile 50 < "$work/push-$name.times")" "$(percentile 99 < "$work/push-$name.times")"
done
echo "(a call includes the process start: PostgreSQL starts archive_command once per segment)"

# Archiving under a write load: pgbench for 30 s with archive_command set to one tool at a
# time; sampled every half second: the .ready files waiting, and the age of the oldest (the
# archive's lag behind the server). Target: the lag stays under 10 s.
archive_load() {  # name, archive_command
    local name=$1 command=$2
    "$bin/psql" -q -c "ALTER SYSTEM SET archive_command = '${command//\'/\'\'}'" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 1
    local before after
    before=$("$bin/psql" -tA -c "SELECT pg_current_wal_lsn()")
    "$bin/pgbench" -T 30 -c 4 -j 2 postgres >/dev/null 2>&1 &
    local load=$! max_files=0 max_lag=0
    while kill -0 "$load" 2>/dev/null; do
        local files oldest lag
        files=$(find "$work/data/pg_wal/archive_status" -name '*.ready' | wc -l)
        oldest=$(find "$work/data/pg_wal/archive_status" -name '*.ready' -printf '%T@\n' | sort -n | head -n 1)
        lag=$([ -n "$oldest" ] && awk -v o="$oldest" -v n="$(date +%s.%N)" 'BEGIN {printf "%.1f", n - o}' || echo 0)
        [ "$files" -gt "$max_files" ] && max_files=$files
        max_lag=$(awk -v a="$max_lag" -v b="$lag" 'BEGIN {print (b > a) ? b : a}')
        sleep 0.5
    done
    after=$("$bin/psql" -tA -c "SELECT pg_current_wal_lsn()")
    local written
    written=$("$bin/psql" -tA -c "SELECT round(pg_wal_lsn_diff('$after', '$before') / 1048576)")
    printf '%-16s %10s %12s %12s\n' "$name" "$written" "$max_files" "$max_lag"
}
echo
echo "archiving under pgbench -c 4 for 30 s"
printf '%-16s %10s %12s %12s\n' archiver wal_MiB max_waiting max_lag_s
archive_load backstop "$backstop wal-push %p $location --level 3"
archive_load pgbackrest "pgbackrest --config=$work/pgbackrest.conf --stanza=bench archive-push %p"
echo "(lag: the age of the oldest segment waiting for archive_command; target under 10 s)"
