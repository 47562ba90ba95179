//go:build unix

package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary serve as the example's worker processes,
// which the example starts as copies of its own executable with -worker.
func TestMain(m *testing.M) {
	if slices.Contains(os.Args, "-worker") {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestShellrun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

	require.NoError(t, run(ctx, &out, "", "", "", logger))

	rows := map[string]string{}
	for line := range strings.Lines(out.String()) {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		row := strings.Join(fields[1:], " ") // without the job ID
		for _, s := range scripts {
			if strings.HasPrefix(row, s.args.Name+" ") {
				rows[s.args.Name] = row
			}
		}
	}
	for name, want := range map[string]string{
		"greet":           "1 completed COMPLETED completed hello from pid",
		"count":           "1 completed COMPLETED completed counted to 3",
		"cancelled":       "1 cancelled STOPPED canceled task: canceled",
		"too slow":        "1 cancelled STOPPED timedOut task: timed out after 4s",
		"ignores SIGTERM": `1 cancelled UNKNOWN cancelTimedOut task: stop timed out after 2s (task: timed out after 4s) (the work returned later: "finished anyway")`,
		"broken":          "2 discarded FAILED failed task: failed: exit status 3: no such table: orders",
	} {
		assert.Contains(t, rows[name], want, "row of %q in:\n%s", name, out.String())
	}
}
