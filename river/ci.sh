#!/usr/bin/env bash
# Vet and test the River runner against a throwaway PostgreSQL server, which
# ../.ci/postgres.sh installs if missing, starts on 127.0.0.1 and, on exit,
# stops and removes.
set -euo pipefail
cd "$(dirname "$0")"

eval "$(../.ci/postgres.sh start)"
trap '../.ci/postgres.sh stop "$PGTEST_DIR"' EXIT

go vet ./...
go test -race ./...
