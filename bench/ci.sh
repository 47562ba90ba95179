#!/usr/bin/env bash
# Checks that the bench module builds, passes vet and its tests, and that
# every benchmark runs once. It times nothing: run.sh does.
set -euo pipefail

cd "$(dirname "$0")"

go vet ./...
go test -count=1 ./...
go test -run '^$' -bench . -benchtime=1x ./...
