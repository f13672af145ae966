#!/usr/bin/env bash
# Installs what building and testing need, only where it is missing (Debian 12).
set -euo pipefail

# prometheus: promtool checks and unit-tests the alert rules. debootstrap: hack/image-check.sh
# builds Debian 13 roots for the image's runtime stage and a PostgreSQL 17 server.
# patchelf: hack/bundle.sh points the WAL archiver bundle at its own libraries.
packages=(libcurl4-openssl-dev libpq-dev libssl-dev libyaml-dev libzstd-dev zlib1g-dev
          postgresql-15 postgresql-client-15 pkg-config openssl python3 curl prometheus debootstrap patchelf)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
# Another apt run (unattended upgrades on a fresh machine) holds apt's locks for a while:
# wait for it, as apt itself can for dpkg's lock, rather than fail.
apt_get() {
    local sudo="" tries=0
    [ "$(id -u)" = 0 ] || sudo="sudo"
    until DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 "$@"; do
        tries=$((tries + 1))
        if ((tries > 60)) || ! { fuser /var/lib/apt/lists/lock /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock >/dev/null 2>&1 || pgrep -x 'apt|apt-get|dpkg|unattended-upgr' >/dev/null; }; then
            return 1
        fi
        echo "waiting for another apt process to finish" >&2
        sleep 10
    done
}
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    apt_get update -qq
    apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The S3 test server, botocore (the SigV4 oracle), the aws CLI (interop tests), cel-python
# (evaluates the CRDs' CEL rules) and cel-expr-python with protobuf (type-checks them as the
# API server does), from PyPI.
# cryptography: hack/restic-oracle.py wraps restic's key with it. helm-python-sdk (Helm v4 as a
# library), kubernetes-validate and jsonschema: hack/chart-check.py.
python_packages=('moto[server]' boto3 awscli cel-python cel-expr-python protobuf pyyaml cryptography
                 helm-python-sdk kubernetes-validate jsonschema)
if ! command -v moto_server >/dev/null || ! command -v aws >/dev/null \
    || ! python3 -c 'import botocore, boto3, celpy, yaml, cryptography, google.protobuf, helm_python, kubernetes_validate, jsonschema; from cel_expr_python import cel' 2>/dev/null; then
    echo "installing: ${python_packages[*]} (pip)" >&2
    python3 -m pip --version >/dev/null 2>&1 || apt_get install -y -qq python3-pip >/dev/null
    python3 -m pip install -q "${python_packages[@]}" 2>/dev/null \
        || python3 -m pip install -q --break-system-packages "${python_packages[@]}"
fi
command -v swift >/dev/null || { echo "swift is not on PATH; install Swift 6.1 or newer" >&2; exit 1; }
