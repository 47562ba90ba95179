#!/usr/bin/env bash
# Measure jobs per second through the runner against plain River workers,
# on PostgreSQL and on SQLite, in ROUNDS rounds, and print the per-round
# ratios. Each round runs every benchmark once and alternates which worker
# goes first, so that a change in the machine's load or the database's
# state spreads over both.
#
#   river/bench.sh          # ROUNDS=10 PG_JOBS=20000 SQLITE_JOBS=5000 by default
#
# The raw output goes to $OUT (default: a temporary file), for benchstat.
set -euo pipefail
cd "$(dirname "$0")"

rounds=${ROUNDS:-10}
pg_jobs=${PG_JOBS:-20000}
sqlite_jobs=${SQLITE_JOBS:-5000}
out=${OUT:-$(mktemp /tmp/taskriver-bench.XXXXXX)}

if [[ -z ${TASKRIVER_TEST_DSN:-} ]]; then
	# A failed start must stop the script, which set -e does for an assignment
	# but not for a command substitution inside eval.
	server=$(../.ci/postgres.sh start)
	eval "$server"
	trap '../.ci/postgres.sh stop "$PGTEST_DIR"' EXIT
fi

binary=$(mktemp /tmp/taskriver-bench-bin.XXXXXX)
go test -c -o "$binary" .

# server_ticks prints the CPU time, in clock ticks, that the PostgreSQL
# server started above has used: the postmaster's own, that of the
# backends it has reaped, and that of the backends still running. It prints
# nothing for a server this script did not start.
server_ticks() {
	local pid file ticks=0 fields
	[[ -n ${PGTEST_DIR:-} && -r $PGTEST_DIR/data/postmaster.pid ]] || return 0
	pid=$(head -n 1 "$PGTEST_DIR/data/postmaster.pid")
	for file in "/proc/$pid/stat" $(pgrep -P "$pid" | sed 's|.*|/proc/&/stat|'); do
		[[ -r $file ]] || continue
		# Fields 14 to 17 of the stat line, counted from the PID: utime,
		# stime, cutime and cstime.
		read -ra fields <<<"$(sed 's/^.*) //' "$file")"
		ticks=$((ticks + fields[11] + fields[12] + fields[13] + fields[14]))
	done
	echo "$ticks"
}

run() { # db jobs worker round
	local before after extra=""
	before=$(server_ticks)
	line=$("$binary" -test.run '^$' -test.bench "Throughput/db=$1/worker=$3\$" \
		-test.benchtime="$2x" | grep '^Benchmark')
	after=$(server_ticks)
	if [[ $1 == postgres && -n $before ]]; then
		# Includes creating, migrating and dropping the database, and
		# inserting the jobs, which cost both workers the same.
		extra=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$2" \
			'BEGIN { printf "\t%.1f server-cpu-µs/job", t / hz * 1e6 / n }')
	fi
	echo "$line$extra round=$4" | tee -a "$out"
}

for round in $(seq 1 "$rounds"); do
	order="plain runner"
	if ((round % 2 == 0)); then
		order="runner plain"
	fi
	for worker in $order; do
		run postgres "$pg_jobs" "$worker" "$round"
		run sqlite "$sqlite_jobs" "$worker" "$round"
	done
done
rm -f "$binary"

echo
echo "raw output: $out"
echo
# Per round and database: plain jobs/s over runner jobs/s (the runner's
# slowdown), and the runner's client and server CPU time per job over
# plain's.
awk '
	{
		split($1, name, "/")
		db = name[2]; worker = name[3]; sub(/-[0-9]+$/, "", worker)
		for (i = 2; i < NF; i++) {
			if ($(i + 1) == "jobs/s") rate[db, worker, $NF] = $i
			if ($(i + 1) == "client-cpu-µs/job") cpu[db, worker, $NF] = $i
			if ($(i + 1) == "server-cpu-µs/job") server[db, worker, $NF] = $i
		}
		dbs[db] = 1; rounds[$NF] = 1
	}
	function report(label, values, n,    i, j, t, median) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (values[j] < values[i]) { t = values[i]; values[i] = values[j]; values[j] = t }
		median = (n % 2) ? values[(n + 1) / 2] : (values[n / 2] + values[n / 2 + 1]) / 2
		printf "| %s | %.2f | %.2f to %.2f | %d |\n", label, median, values[1], values[n], n
	}
	END {
		print "| ratio | median | range over rounds | rounds |"
		print "| --- | ---: | ---: | ---: |"
		for (db in dbs) {
			n = 0; m = 0; k = 0
			for (r in rounds) {
				if ((db, "worker=runner", r) in rate && (db, "worker=plain", r) in rate) {
					slow[++n] = rate[db, "worker=plain", r] / rate[db, "worker=runner", r]
					cost[++m] = cpu[db, "worker=runner", r] / cpu[db, "worker=plain", r]
					if ((db, "worker=runner", r) in server && (db, "worker=plain", r) in server)
						serverCost[++k] = server[db, "worker=runner", r] / server[db, "worker=plain", r]
				}
			}
			report(db " plain jobs/s / runner jobs/s", slow, n)
			report(db " runner client CPU per job / plain", cost, m)
			if (k > 0) report(db " runner server CPU per job / plain", serverCost, k)
		}
	}
' "$out"
