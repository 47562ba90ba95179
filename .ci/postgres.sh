#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL server on 127.0.0.1 for tests.
#
#   eval "$(.ci/postgres.sh start)"   # prints PGTEST_DIR=... and TASKRIVER_TEST_DSN=...
#   .ci/postgres.sh stop "$PGTEST_DIR"
#
# start installs Debian's postgresql package when no server binaries are found.
# It runs initdb into a new temporary folder, as the postgres user when run as
# root because initdb rejects root. The server listens on a free port of
# 127.0.0.1 only and puts its Unix socket inside that folder. The
# superuser is postgres with trust authentication, which is safe only because
# nothing outside this machine can reach the address. stop shuts the server
# down and removes the folder.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
	local dir
	for dir in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
		if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
			echo "$dir"
			return 0
		fi
	done
	if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
		dirname "$(command -v initdb)"
		return 0
	fi
	return 1
}

install_server() {
	if [[ $(id -u) -ne 0 ]]; then
		log "no PostgreSQL server binaries found, and installing them needs root: run apt-get install postgresql-15"
		exit 1
	fi
	log "installing postgresql-15 with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	apt-get install -y -q postgresql-15 >&2 || apt-get install -y -q postgresql >&2
}

# as_owner runs a command as the owner of the data folder: the postgres user
# when this script runs as root, else the current user.
as_owner() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
	local bindir dir port attempt
	bindir=$(find_bindir) || { install_server; bindir=$(find_bindir); }

	dir=$(mktemp -d /tmp/pgtest.XXXXXX)
	mkdir -p "$dir/data" "$dir/socket"
	if [[ $(id -u) -eq 0 ]]; then
		chown -R postgres: "$dir"
	fi
	chmod 700 "$dir/data"

	as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }

	# A port can be taken between the check and the server's bind, so a
	# failed start moves on to the next candidate.
	for attempt in $(seq 1 20); do
		port=$((20000 + RANDOM % 30000))
		port_in_use "$port" && continue
		if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
			-o "-c listen_addresses=127.0.0.1 -p $port -k $dir/socket -c max_connections=200" \
			start >&2; then
			echo "PGTEST_DIR=$dir"
			echo "PGTEST_BINDIR=$bindir"
			echo "TASKRIVER_TEST_DSN=postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
			echo "export PGTEST_DIR PGTEST_BINDIR TASKRIVER_TEST_DSN"
			return 0
		fi
		log "start on port $port failed (attempt $attempt), trying another port"
	done
	cat "$dir/server.log" >&2 || true
	log "could not start PostgreSQL; data folder kept at $dir"
	exit 1
}

stop() {
	local dir=${1:-${PGTEST_DIR:-}} bindir
	if [[ -z $dir ]]; then
		log "missing data folder: pass the PGTEST_DIR that start printed"
		exit 2
	fi
	if [[ ! -d $dir/data ]]; then
		log "no server data in $dir: nothing to stop"
		return 0
	fi
	bindir=$(find_bindir)
	as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
	rm -rf "$dir"
}

case ${1:-} in
start) start ;;
stop) stop "${2:-}" ;;
*)
	echo "usage: $0 start | stop DIR" >&2
	exit 2
	;;
esac
