#!/usr/bin/env bash
# Proves the image's runtime stage without Docker (there is no container engine here):
#  - a Debian 13 root (debootstrap --variant=minbase trixie) with exactly the packages of the
#    Dockerfile's runtime `apt-get install` line, read from the Dockerfile so the two cannot
#    drift, and the binaries as the build stage makes them (release, --static-swift-stdlib);
#  - run in it as uid 65532 on a read-only root: `backstop --version`, `backstop-controller
#    --help`, and a backup, verify and restore of a PostgreSQL 17 server started from a second
#    Debian 13 root (the server is not part of the image);
#  - the WAL archiver bundle (hack/bundle.sh) in the PostgreSQL 17 root, which lacks the card's
#    libraries: wal-push and wal-fetch as the postgres user;
#  - this machine's pg_dump 15 against that server: refused before anything is written, naming
#    both versions and the fix.
# The roots are cached in $BACKSTOP_IMAGE_CACHE (default /var/cache/backstop-image) and made
# again when the package list changes. Needs root (debootstrap, chroot, mounts); runs in a
# mount namespace of its own, so every mount goes when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "hack/image-check.sh: run as root (debootstrap, chroot and mounts need it)" >&2; exit 1; }
if [ -z "${BACKSTOP_IMAGE_CHECK_NAMESPACE:-}" ]; then
    exec unshare --mount --fork env BACKSTOP_IMAGE_CHECK_NAMESPACE=1 "$0" "$@"
fi
mount --make-rprivate /

cache=${BACKSTOP_IMAGE_CACHE:-/var/cache/backstop-image}
mirror=${BACKSTOP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$cache"

# The runtime stage's packages: the `apt-get install` of the Dockerfile's last stage.
read -r -a runtime_packages <<< "$(python3 - <<'EOF'
import re
text = open("Dockerfile").read().replace("\\\n", " ")
stage = re.split(r"(?m)^FROM ", text)[-1]
for line in stage.splitlines():
    if line.startswith("RUN ") and "apt-get install" in line:
        words = line.split("apt-get install", 1)[1].split("&&", 1)[0].split()
        print(" ".join(w for w in words if not w.startswith("-")))
        break
EOF
)"
[ "${#runtime_packages[@]}" -gt 0 ] || { echo "hack/image-check.sh: no apt-get install line in the Dockerfile's runtime stage" >&2; exit 1; }
echo "== runtime packages (from the Dockerfile): ${runtime_packages[*]}"

# A Debian 13 root with `packages`, made once per package list.
make_root() {
    local root=$1; shift
    local stamp="$root/.backstop-packages"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$*" ]; then return; fi
    echo "== debootstrap trixie into $root ($*)"
    rm -rf "$root"
    debootstrap --variant=minbase trixie "$root" "$mirror" > "$cache/debootstrap.log" 2>&1 \
        || { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
    # No services started by package scripts, and no cluster made by postgresql-common.
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
    chmod +x "$root/usr/sbin/policy-rc.d"
    mkdir -p "$root/etc/postgresql-common"
    echo "create_main_cluster = false" > "$root/etc/postgresql-common/createcluster.conf"
    mount -t proc proc "$root/proc"
    chroot "$root" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends "$@" > "$cache/apt.log" 2>&1 \
        || { tail -n 20 "$cache/apt.log" >&2; exit 1; }
    chroot "$root" apt-get clean
    umount "$root/proc"
    echo "$*" > "$stamp"
}
runtime="$cache/trixie-runtime"
server="$cache/trixie-postgresql"
make_root "$runtime" "${runtime_packages[@]}"
make_root "$server" postgresql-17

echo "== the binaries, as the image's build stage makes them"
swift build -c release --static-swift-stdlib --scratch-path .build-static --product backstop 2>&1 | tail -n 1
swift build -c release --static-swift-stdlib --scratch-path .build-static --product backstop-controller 2>&1 | tail -n 1
bin=$(swift build -c release --static-swift-stdlib --scratch-path .build-static --show-bin-path)
install -m 0755 "$bin/backstop" "$bin/backstop-controller" "$runtime/usr/local/bin/"

work=$(mktemp -d /tmp/backstop-image.XXXXXX)
chmod 0777 "$work"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
password=image-check-$RANDOM
stop_server() {
    chroot --userspec=postgres:postgres "$server" /usr/lib/postgresql/17/bin/pg_ctl -D /var/lib/backstop-check -m fast stop >/dev/null 2>&1 || true
    rm -rf "$work" "$server/var/lib/backstop-check"
}
trap stop_server EXIT

echo "== PostgreSQL 17 from the second root, on 127.0.0.1:$port"
mount -t proc proc "$server/proc"
mount --bind /dev "$server/dev"
mount -t tmpfs -o mode=1777 tmpfs "$server/tmp"
rm -rf "$server/var/lib/backstop-check"
install -d -o "$(chroot "$server" id -u postgres)" "$server/var/lib/backstop-check"
echo "$password" > "$server/tmp/pw"
chmod 644 "$server/tmp/pw"
chroot --userspec=postgres:postgres "$server" /usr/lib/postgresql/17/bin/initdb -D /var/lib/backstop-check -U postgres \
    --auth=scram-sha-256 --pwfile=/tmp/pw > "$work/initdb.log"
chroot --userspec=postgres:postgres "$server" /usr/lib/postgresql/17/bin/pg_ctl -D /var/lib/backstop-check -w -l /tmp/server.log \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1" start > /dev/null
cp hack/sample-db.sql "$work/sample-db.sql"
chmod 644 "$work/sample-db.sql"
mkdir -p "$server/work"
mount --bind "$work" "$server/work"
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGPASSWORD=$password
chroot "$server" /usr/lib/postgresql/17/bin/createdb shop
chroot "$server" /usr/lib/postgresql/17/bin/psql -q -v ON_ERROR_STOP=1 -d shop -f /work/sample-db.sql

# The runtime root, read-only, with /proc, /dev, an empty /tmp and the work folder mounted.
mkdir -p "$runtime/work"
mount --bind "$runtime" "$runtime"
mount -o remount,bind,ro "$runtime"
mount -t proc proc "$runtime/proc"
mount --bind /dev "$runtime/dev"
mount -t tmpfs -o mode=1777 tmpfs "$runtime/tmp"
mount --bind "$work" "$runtime/work"
openssl rand -base64 32 > "$work/backup.key"
chmod 644 "$work/backup.key"
in_image() {
    chroot --userspec=65532:65532 "$runtime" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp \
        PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER="$PGUSER" PGPASSWORD="$PGPASSWORD" \
        BACKSTOP_STORAGE=file:///work/backups BACKSTOP_ENCRYPTION_KEY_FILE=/work/backup.key "$@"
}
if touch "$runtime/usr/local/bin/probe" 2>/dev/null; then echo "the runtime root is not read-only" >&2; exit 1; fi

echo "== in the image's root, as uid 65532 on a read-only root"
version=$(in_image backstop --version)
[ "$version" = "$("$bin/backstop" --version)" ] || { echo "backstop --version in the image's root: $version" >&2; exit 1; }
echo "backstop --version: $version"
in_image backstop-controller --help > /dev/null && echo "backstop-controller --help: ok"
in_image /usr/lib/postgresql/17/bin/pg_dump --version
in_image backstop backup --database "dbname=shop"
in_image backstop verify latest
in_image backstop restore latest --target "dbname=shop_restored" > "$work/restore.out"
grep -q '"outcome":"succeeded"' "$work/restore.out" && grep -q 'row counts of 3 tables match' "$work/restore.out" \
    || { cat "$work/restore.out" >&2; exit 1; }
manifest=$(find "$work/backups" -name manifest.json | head -n 1)
python3 - "$manifest" <<'EOF'
import json, sys
database = json.load(open(sys.argv[1]))["database"]
assert database["serverVersionNumber"] // 10000 == 17, database
assert database["pgDumpVersion"].startswith("17."), database
print(f"manifest: server {database['serverVersion']}, pg_dump {database['pgDumpVersion']}")
EOF
query="SELECT count(*) FROM shop.orders"
[ "$(chroot "$server" /usr/lib/postgresql/17/bin/psql -tA -d shop -c "$query")" = "$(chroot "$server" /usr/lib/postgresql/17/bin/psql -tA -d shop_restored -c "$query")" ] \
    || { echo "row counts differ after the restore" >&2; exit 1; }
echo "backup, verify and restore of PostgreSQL 17 in the image's root: row counts match"

echo "== this machine's pg_dump $(ls /usr/lib/postgresql | sort -V | head -n 1) against PostgreSQL 17: refused before anything is written"
old_bin=/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -V | head -n 1)/bin
if "$bin/backstop" backup --database "dbname=shop" --storage "file://$work/old" --pg-bin "$old_bin" 2> "$work/refused.err"; then
    echo "an older pg_dump was not refused" >&2; exit 1
fi
grep -q "PostgreSQL 17" "$work/refused.err" && grep -q "pg_dump is 15" "$work/refused.err" && grep -q "pg_dump 17 or newer" "$work/refused.err" \
    || { cat "$work/refused.err" >&2; exit 1; }
[ -z "$(find "$work/old" -type f 2>/dev/null)" ] || { echo "the refused backup wrote files" >&2; exit 1; }
tail -n 1 "$work/refused.err"
echo "== the WAL archiver bundle in the PostgreSQL 17 root (no libcurl, no libyaml), as the postgres user"
hack/bundle.sh "$bin/backstop" "$work/bundle"
rm -rf "$server/opt/backstop"
cp -a "$work/bundle" "$server/opt/backstop"
if chroot "$server" ldd /opt/backstop/bin/backstop | grep 'not found'; then echo "the bundle misses libraries" >&2; exit 1; fi
for library in libcurl.so.4 libyaml-0.so.2; do
    if [ -e "$server/usr/lib/x86_64-linux-gnu/$library" ]; then echo "the PostgreSQL root has $library: it proves nothing about the bundle" >&2; exit 1; fi
done
install -d -o "$(chroot "$server" id -u postgres)" "$work/wal" "$work/pg_wal"
head -c 16777216 /dev/urandom > "$work/pg_wal/000000010000000000000007"
chmod 644 "$work/pg_wal/000000010000000000000007"
as_postgres() {
    chroot --userspec=postgres:postgres "$server" env -i PATH=/usr/bin:/bin HOME=/tmp \
        BACKSTOP_STORAGE=file:///work/wal BACKSTOP_ENVIRONMENT=production BACKSTOP_ENCRYPTION_KEY_FILE=/work/backup.key "$@"
}
as_postgres /opt/backstop/bin/backstop wal-push /work/pg_wal/000000010000000000000007
as_postgres /opt/backstop/bin/backstop wal-fetch 000000010000000000000007 /tmp/fetched
cmp "$work/pg_wal/000000010000000000000007" "$server/tmp/fetched" || { echo "wal-fetch restored other bytes" >&2; exit 1; }
if as_postgres /opt/backstop/bin/backstop wal-fetch 000000010000000000000008 /tmp/missing; then
    echo "wal-fetch of a file not in the archive succeeded" >&2; exit 1
elif [ $? != 1 ]; then
    echo "wal-fetch of a file not in the archive did not exit 1 (PostgreSQL's end of archive)" >&2; exit 1
fi
echo "wal-push and wal-fetch of a 16 MiB segment through the bundle: same bytes back; a missing file exits 1"

echo "hack/image-check.sh: the image's runtime stage works"
