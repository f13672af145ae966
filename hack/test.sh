#!/usr/bin/env bash
# Installs what is missing, starts a throwaway PostgreSQL, runs `swift test`, stops the
# server, and fails if any test failed or the integration tests did not run.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/install-deps.sh
services=$(mktemp -d /tmp/backstop-test.XXXXXX)
chmod 755 "$services"  # the server runs as postgres and must reach its folder
trap 'hack/postgres.sh stop "$services/pg" || true; rm -rf "$services"' EXIT
# An assignment, unlike eval "$(…)", fails the script when the server does not start.
server_env=$(hack/postgres.sh start "$services/pg")
eval "$server_env"
export BACKSTOP_TEST_REQUIRE_INTEGRATION=1

swift build --build-tests
log="$services/test.log"
set +e
swift test --skip-build 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
    echo "hack/test.sh: swift test failed ($status)" >&2
    exit "$status"
fi
# The integration suite must have run against the server, not been skipped.
if ! grep -q 'Suite "End to end against PostgreSQL" passed' "$log"; then
    echo "hack/test.sh: the end-to-end suite did not run" >&2
    exit 1
fi
echo "hack/test.sh: all tests passed"
