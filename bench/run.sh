#!/usr/bin/env bash
# Runs every benchmark of the bench module COUNT times, interleaved, and
# prints a benchstat table and the ratios of task's cost targets.
#
# Environment:
#   COUNT             samples per benchmark (default 10)
#   BENCHTIME         -benchtime of the timing benchmarks (default 1s)
#   PARKED_BENCHTIME  -benchtime of BenchmarkParked, whose every iteration
#                     parks and cancels 100,000 runs (default 5x)
#   OUT               file for the raw go test output (default a new
#                     temporary file, whose name is printed)
#
# The rounds are interleaved: each round runs every benchmark once, so a
# change in the machine's load during the run spreads over all benchmarks
# instead of landing on a few. The two runs recorded in BENCHMARKS.md took
# 21 and 16 minutes on two cores.
set -euo pipefail

cd "$(dirname "$0")"

count=${COUNT:-10}
benchtime=${BENCHTIME:-1s}
parked_benchtime=${PARKED_BENCHTIME:-5x}
work=$(mktemp -d)
out=${OUT:-$work/bench.txt}
: >"$out"

go test -c -o "$work/bench.test" .

for round in $(seq "$count"); do
	echo "round $round of $count" >&2
	"$work/bench.test" -test.run '^$' -test.benchtime "$benchtime" \
		-test.bench '^Benchmark(Run|Cancel|Timeout|Transition|Lifecycle|Clock)$' >>"$out"
	"$work/bench.test" -test.run '^$' -test.benchtime "$benchtime" -test.cpu 1,2 \
		-test.bench '^Benchmark(RunParallel|TransitionParallel)$' >>"$out"
	"$work/bench.test" -test.run '^$' -test.benchtime "$parked_benchtime" \
		-test.bench '^BenchmarkParked$' >>"$out"
done

echo "raw results: $out" >&2
go tool benchstat "$out"
echo
go run ./ratios "$out"
