#!/usr/bin/env bash
# Starts or stops a throwaway S3 API server (moto in server mode) on a free loopback port.
#   hack/moto.sh start DIR [--auth]  -> prints `export …` lines for the server in DIR
#     (BACKSTOP_TEST_S3_ENDPOINT and AWS_* keys; with --auth, BACKSTOP_TEST_S3_AUTH_*)
#   hack/moto.sh stop DIR
# With --auth moto checks SigV4 signatures (after its first request, which creates the key
# the tests use); without it, it accepts any signature. See DESIGN §5 for moto's limits.
set -euo pipefail

command=${1:?usage: hack/moto.sh start|stop DIR [--auth]}
dir=${2:?usage: hack/moto.sh start|stop DIR [--auth]}

case "$command" in
start)
    command -v moto_server >/dev/null || { echo "moto_server is missing; run hack/install-deps.sh" >&2; exit 1; }
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if [ "${3:-}" = "--auth" ]; then
        # Three unauthenticated requests (the IAM user, its policy and its key, below) before
        # checks begin.
        export INITIAL_NO_AUTH_ACTION_COUNT=3
    fi
    moto_server -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
    echo $! > "$dir/moto.pid"
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break
        kill -0 "$(cat "$dir/moto.pid")" 2>/dev/null || { cat "$dir/moto.log" >&2; exit 1; }
        sleep 0.1
    done
    key_id=AKIABACKSTOPTEST0001
    secret=backstop-test-secret-key
    if [ "${3:-}" = "--auth" ]; then
        # moto checks signatures against keys created in its IAM.
        read -r key_id secret < <(python3 - "$port" <<'PY'
import sys, boto3
iam = boto3.client("iam", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="backstop")
iam.put_user_policy(UserName="backstop", PolicyName="s3", PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}')
key = iam.create_access_key(UserName="backstop")["AccessKey"]
print(key["AccessKeyId"], key["SecretAccessKey"])
PY
)
    fi
    if [ "${3:-}" = "--auth" ]; then
        cat <<ENV
export BACKSTOP_TEST_S3_AUTH_ENDPOINT=http://127.0.0.1:$port
export BACKSTOP_TEST_S3_AUTH_ACCESS_KEY_ID=$key_id
export BACKSTOP_TEST_S3_AUTH_SECRET_ACCESS_KEY=$secret
ENV
    else
        cat <<ENV
export BACKSTOP_TEST_S3_ENDPOINT=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=$key_id
export AWS_SECRET_ACCESS_KEY=$secret
export AWS_REGION=us-east-1
ENV
    fi
    ;;
stop)
    if [ -f "$dir/moto.pid" ]; then
        kill "$(cat "$dir/moto.pid")" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: hack/moto.sh start|stop DIR [--auth]" >&2
    exit 64
    ;;
esac
