// Ratios reads the output of the bench module's benchmarks and prints how
// task compares with each cost target.
//
// Usage:
//
//	go run ./ratios FILE...
//
// Every ratio pairs the samples of two benchmarks by their order in the
// input. run.sh runs all benchmarks once per round, so the k-th sample of
// each comes from the same round, under the same load. The table gives the
// median of the per-round ratios and their range.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// target is one cost target: numerator / denominator in unit, compared
// with limit. A target without denominator compares the numerator's own
// value with limit.
type target struct {
	claim       string
	numerator   string
	denominator string
	unit        string
	limit       float64
	atLeast     bool // met when the ratio is >= limit, otherwise when it is <= limit
	strict      bool // met only when the ratio is strictly below limit
}

var targets = []target{
	{
		claim:       "Start+Wait, one callback per change / floor with status",
		numerator:   "Run/task-callback",
		denominator: "Run/floor-status",
		unit:        "sec/op",
		limit:       1.25,
	},
	{
		claim:       "Start+Wait, no callback / floor with status",
		numerator:   "Run/task",
		denominator: "Run/floor-status",
		unit:        "sec/op",
		limit:       1.25,
	},
	{
		claim:       "Start+Wait, no callback / errgroup.WithContext",
		numerator:   "Run/task",
		denominator: "Run/errgroup-ctx",
		unit:        "sec/op",
		limit:       1,
		strict:      true,
	},
	{
		claim:       "one transition (Abandon) / hand-written CAS",
		numerator:   "Transition/task-abandon",
		denominator: "Transition/cas",
		unit:        "sec/op",
		limit:       2,
	},
	{
		claim:       "looplab/fsm transition / task transition (Abandon)",
		numerator:   "Transition/looplab",
		denominator: "Transition/task-abandon",
		unit:        "sec/op",
		limit:       20,
		atLeast:     true,
	},
	{
		claim:       "stateless transition / task transition (Abandon)",
		numerator:   "Transition/stateless",
		denominator: "Transition/task-abandon",
		unit:        "sec/op",
		limit:       20,
		atLeast:     true,
	},
	{
		claim:     "heap bytes per parked invocation",
		numerator: "Parked/task",
		unit:      "heap-B/run",
		limit:     1024,
	},
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ratios FILE...")
		os.Exit(2)
	}
	samples, err := readSamples(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ratios:", err)
		os.Exit(1)
	}
	if err := printTargets(os.Stdout, samples); err != nil {
		fmt.Fprintln(os.Stderr, "ratios:", err)
		os.Exit(1)
	}
}

// sampleKey names the samples of one unit of one benchmark. name has no
// "Benchmark" prefix.
type sampleKey struct {
	name string
	unit string
}

// readSamples returns every value in the files, in input order, keyed by
// the benchmark's name with its GOMAXPROCS suffix. A benchmark that ran at
// one GOMAXPROCS value only is also keyed by its bare name.
func readSamples(paths []string) (map[sampleKey][]float64, error) {
	samples := make(map[sampleKey][]float64)
	procs := make(map[string]string)
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		reader := benchfmt.NewReader(f, path)
		for reader.Scan() {
			result, ok := reader.Result().(*benchfmt.Result)
			if !ok {
				continue
			}
			name, gomaxprocs := splitName(result.Name)
			procs[name+gomaxprocs] = gomaxprocs
			for _, value := range result.Values {
				key := sampleKey{name: name + gomaxprocs, unit: value.Unit}
				samples[key] = append(samples[key], value.Value)
			}
		}
		err = reader.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}

	// Key the benchmarks that ran at one GOMAXPROCS value by their bare
	// name, so that the targets do not depend on the machine's core count.
	bare := make(map[string][]string)
	for full, gomaxprocs := range procs {
		name := strings.TrimSuffix(full, gomaxprocs)
		bare[name] = append(bare[name], full)
	}
	for name, fulls := range bare {
		if len(fulls) != 1 || fulls[0] == name {
			continue
		}
		for key, values := range samples {
			if key.name == fulls[0] {
				samples[sampleKey{name: name, unit: key.unit}] = values
			}
		}
	}
	return samples, nil
}

// splitName returns a benchmark's name without its "Benchmark" prefix, and
// its GOMAXPROCS suffix such as "-2", which is empty when absent.
func splitName(n benchfmt.Name) (name, gomaxprocs string) {
	base, parts := n.Parts()
	var b bytes.Buffer
	b.Write(bytes.TrimPrefix(base, []byte("Benchmark")))
	for _, part := range parts {
		if bytes.HasPrefix(part, []byte("-")) {
			gomaxprocs = string(part)
			continue
		}
		b.Write(part)
	}
	return b.String(), gomaxprocs
}

func printTargets(w io.Writer, samples map[sampleKey][]float64) error {
	fmt.Fprintln(w, "| target | median | range over rounds | goal | met |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | --- |")
	for _, t := range targets {
		ratios, err := t.ratios(samples)
		if err != nil {
			return err
		}
		median, low, high := summarize(ratios)

		goal := fmt.Sprintf("<= %g", t.limit)
		met := median <= t.limit
		switch {
		case t.atLeast:
			goal = fmt.Sprintf(">= %g", t.limit)
			met = median >= t.limit
		case t.strict:
			goal = fmt.Sprintf("< %g", t.limit)
			met = median < t.limit
		}
		verdict := "yes"
		if !met {
			verdict = "no"
		}
		fmt.Fprintf(w, "| %s | %s | %s to %s | %s | %s |\n",
			t.claim, format(median), format(low), format(high), goal, verdict)
	}
	return nil
}

// format prints three significant digits, and whole numbers from 100 up,
// since the samples are rarely more precise than that.
func format(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// ratios pairs the numerator's samples with the denominator's by position.
func (t target) ratios(samples map[sampleKey][]float64) ([]float64, error) {
	num := samples[sampleKey{name: t.numerator, unit: t.unit}]
	if len(num) == 0 {
		return nil, fmt.Errorf("no %s samples of %s", t.unit, t.numerator)
	}
	if t.denominator == "" {
		return num, nil
	}
	den := samples[sampleKey{name: t.denominator, unit: t.unit}]
	if len(den) != len(num) {
		return nil, fmt.Errorf("%d samples of %s but %d of %s: cannot pair them by round",
			len(num), t.numerator, len(den), t.denominator)
	}
	ratios := make([]float64, len(num))
	for i := range num {
		ratios[i] = num[i] / den[i]
	}
	return ratios, nil
}

func summarize(values []float64) (median, low, high float64) {
	sorted := slices.Sorted(slices.Values(values))
	n := len(sorted)
	median = sorted[n/2]
	if n%2 == 0 {
		median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return median, sorted[0], sorted[n-1]
}
