#!/usr/bin/env bash
# Starts or stops a throwaway S3 API server (moto in server mode) on a free loopback port.
#   hack/moto.sh start DIR [--auth|--tls]  -> prints `export …` lines for the server in DIR
#   hack/moto.sh stop DIR
# Plain: BACKSTOP_TEST_S3_ENDPOINT and AWS_* keys (moto accepts any signature).
# --auth: moto checks SigV4 signatures against an IAM key created here (BACKSTOP_TEST_S3_AUTH_*);
#   see DESIGN §5 for the correct signatures it wrongly rejects.
# --tls: HTTPS with a certificate from a throwaway CA (BACKSTOP_TEST_S3_TLS_ENDPOINT, _CA).
set -euo pipefail

command=${1:?usage: hack/moto.sh start|stop DIR [--auth|--tls]}
dir=${2:?usage: hack/moto.sh start|stop DIR [--auth|--tls]}
mode=${3:-plain}

case "$command" in
start)
    command -v moto_server >/dev/null || { echo "moto_server is missing; run hack/install-deps.sh" >&2; exit 1; }
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    scheme=http
    tls_options=()
    probe=(curl -fs)
    case "$mode" in
    --auth)
        # Three unauthenticated requests (the IAM user, its policy and its key, below) before
        # checks begin.
        export INITIAL_NO_AUTH_ACTION_COUNT=3 ;;
    --tls)
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=backstop test CA" \
            -keyout "$dir/ca.key" -out "$dir/ca.pem" >/dev/null 2>&1
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/san.ext"
        openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
            -extfile "$dir/san.ext" -out "$dir/server.pem" >/dev/null 2>&1
        scheme=https
        tls_options=(-s -c "$dir/server.pem" -k "$dir/server.key")
        probe=(curl -fs --cacert "$dir/ca.pem") ;;
    esac
    moto_server -H 127.0.0.1 -p "$port" "${tls_options[@]}" >"$dir/moto.log" 2>&1 &
    echo $! > "$dir/moto.pid"
    for _ in $(seq 100); do
        "${probe[@]}" "$scheme://127.0.0.1:$port/moto-api/" >/dev/null 2>&1 && break
        kill -0 "$(cat "$dir/moto.pid")" 2>/dev/null || { cat "$dir/moto.log" >&2; exit 1; }
        sleep 0.1
    done
    case "$mode" in
    --auth)
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
        cat <<ENV
export BACKSTOP_TEST_S3_AUTH_ENDPOINT=http://127.0.0.1:$port
export BACKSTOP_TEST_S3_AUTH_ACCESS_KEY_ID=$key_id
export BACKSTOP_TEST_S3_AUTH_SECRET_ACCESS_KEY=$secret
ENV
        ;;
    --tls)
        cat <<ENV
export BACKSTOP_TEST_S3_TLS_ENDPOINT=https://127.0.0.1:$port
export BACKSTOP_TEST_S3_TLS_CA=$dir/ca.pem
ENV
        ;;
    *)
        cat <<ENV
export BACKSTOP_TEST_S3_ENDPOINT=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=AKIABACKSTOPTEST0001
export AWS_SECRET_ACCESS_KEY=backstop-test-secret-key
export AWS_REGION=us-east-1
ENV
        ;;
    esac
    ;;
stop)
    if [ -f "$dir/moto.pid" ]; then
        kill "$(cat "$dir/moto.pid")" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: hack/moto.sh start|stop DIR [--auth|--tls]" >&2
    exit 64
    ;;
esac
