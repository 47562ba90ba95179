#!/usr/bin/env bash
# Vet and test the River runner against a throwaway PostgreSQL server, which
# ../.ci/postgres.sh installs if missing, starts on 127.0.0.1 and, on exit,
# stops and removes.
set -euo pipefail
cd "$(dirname "$0")"

# A failed start must stop the script, which set -e does for an assignment
# but not for a command substitution inside eval.
server=$(../.ci/postgres.sh start)
eval "$server"
trap '../.ci/postgres.sh stop "$PGTEST_DIR"' EXIT

go vet ./...
# -count=1: the results depend on a server that go test cannot see, so a
# cached pass proves nothing.
go test -race -count=1 ./...
