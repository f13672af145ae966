#!/usr/bin/env bash
# Installs what building and testing need, only where it is missing (Debian 12).
set -euo pipefail

packages=(libcurl4-openssl-dev libpq-dev libssl-dev libyaml-dev libzstd-dev zlib1g-dev
          postgresql-15 postgresql-client-15 pkg-config openssl python3 curl)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The S3 test server, botocore (the SigV4 oracle), the aws CLI (interop tests) and cel-python
# (the CRDs' CEL rules), from PyPI.
if ! command -v moto_server >/dev/null || ! command -v aws >/dev/null || ! python3 -c 'import botocore, boto3, celpy, yaml' 2>/dev/null; then
    echo "installing: moto[server] boto3 awscli cel-python pyyaml (pip)" >&2
    python3 -m pip --version >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    python3 -m pip install -q 'moto[server]' boto3 awscli cel-python pyyaml 2>/dev/null \
        || python3 -m pip install -q --break-system-packages 'moto[server]' boto3 awscli cel-python pyyaml
fi
command -v swift >/dev/null || { echo "swift is not on PATH; install Swift 6.1 or newer" >&2; exit 1; }
