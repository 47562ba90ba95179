//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tasklife/task"
)

// scenario is one command of the demo, with its limits and the ending it
// is expected to show.
type scenario struct {
	name        string
	argv        []string
	timeout     time.Duration
	stopTimeout time.Duration
	killDelay   time.Duration
	// cancelWhenReady cancels the run once the command writes a line to
	// file descriptor 3.
	cancelWhenReady bool
	wantStatus      task.Status
	wantCode        task.ExitCode
}

// ignoreTERM is a shell script that ignores SIGTERM and then reports that
// it is ready. The sleep it starts inherits the ignored SIGTERM, so only
// SIGKILL stops the two. Before the report, SIGTERM could still reach the
// shell ahead of its trap, so the run is cancelled only after it.
const ignoreTERM = "trap '' TERM; echo ready >&3; sleep 10"

// demoScenarios show every way a run of a command ends, in about a second.
// Each ending depends on the order of events, not on how fast the machine
// is: a limit that must not be reached leaves seconds to spare.
var demoScenarios = []scenario{{
	name:        "completes",
	argv:        []string{"sh", "-c", `echo "hello from pid $$"`},
	timeout:     10 * time.Second,
	stopTimeout: time.Second,
	killDelay:   500 * time.Millisecond,
	wantStatus:  task.StatusCompleted,
	wantCode:    task.ExitCompleted,
}, {
	name:        "fails",
	argv:        []string{"sh", "-c", `echo "cannot write the report: disk full" >&2; exit 3`},
	timeout:     10 * time.Second,
	stopTimeout: time.Second,
	killDelay:   500 * time.Millisecond,
	wantStatus:  task.StatusFailed,
	wantCode:    task.ExitFailed,
}, {
	name:        "cannot start",
	argv:        []string{"taskrun-demo-no-such-command"},
	timeout:     10 * time.Second,
	stopTimeout: time.Second,
	killDelay:   500 * time.Millisecond,
	wantStatus:  task.StatusAbandoned,
	wantCode:    task.ExitFailed,
}, {
	name:        "times out, stops on SIGTERM",
	argv:        []string{"sleep", "10"},
	timeout:     300 * time.Millisecond,
	stopTimeout: 5 * time.Second,
	killDelay:   2 * time.Second,
	wantStatus:  task.StatusStopped,
	wantCode:    task.ExitTimedOut,
}, {
	name:            "canceled, ignores SIGTERM, killed",
	argv:            []string{"sh", "-c", ignoreTERM},
	stopTimeout:     5 * time.Second,
	killDelay:       200 * time.Millisecond,
	cancelWhenReady: true,
	wantStatus:      task.StatusStopped,
	wantCode:        task.ExitCanceled,
}, {
	// The cancel function would send SIGKILL after 5s, but the stop
	// timeout gives it only 300ms: the run ends UNKNOWN while the process
	// still runs, and taskrun kills it after the run.
	name:            "cannot be stopped in time",
	argv:            []string{"sh", "-c", ignoreTERM},
	stopTimeout:     300 * time.Millisecond,
	killDelay:       5 * time.Second,
	cancelWhenReady: true,
	wantStatus:      task.StatusUnknown,
	wantCode:        task.ExitCancelTimedOut,
}}

// demoRow is one line of the demo's summary table.
type demoRow struct {
	scenario scenario
	out      outcome
	took     time.Duration
}

func (r demoRow) ok() bool {
	return r.out.Snapshot.Status == r.scenario.wantStatus &&
		r.out.Snapshot.ExitCode == r.scenario.wantCode
}

// runDemo runs demoScenarios one after the other, prints their
// transitions to stderr and a summary table to stdout, and returns the
// exit status of taskrun: 0 if every scenario ended as expected. The end
// of ctx cancels the current scenario and skips the rest.
func runDemo(ctx context.Context, stdout, stderr *os.File) int {
	fmt.Fprintf(stderr, "taskrun demo: %d commands, one for each way a run ends\n",
		len(demoScenarios))
	var rows []demoRow
	status := 0
	for _, s := range demoScenarios {
		if ctx.Err() != nil {
			status = exitStatuses[task.ExitCanceled]
			break
		}
		row, err := s.run(ctx, stdout, stderr)
		rows = append(rows, row)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "taskrun: %s: %v\n", s.name, err)
			status = exitNotReaped
		case !row.ok() && status == 0:
			status = exitStatuses[task.ExitFailed]
		}
	}

	fmt.Fprintln(stdout)
	printTable(stdout, rows)
	return status
}

// run runs the scenario's command and returns its row of the table.
func (s scenario) run(ctx context.Context, stdout, stderr *os.File) (demoRow, error) {
	limits := fmt.Sprintf("stop timeout %v, SIGKILL after %v", s.stopTimeout, s.killDelay)
	if s.timeout > 0 {
		limits = fmt.Sprintf("timeout %v, %s", s.timeout, limits)
	}
	if s.cancelWhenReady {
		limits = "cancelled when ready, " + limits
	}
	fmt.Fprintf(stderr, "\n== %s: %s (%s)\n", s.name, quoteCommand(s.argv), limits)

	c := newCommand(s.argv, stdout, stderr, s.killDelay)
	if s.cancelWhenReady {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		ready, stop, err := cancelWhenReady(cancel)
		if err != nil {
			return demoRow{scenario: s}, err
		}
		defer stop()
		c.extra = []*os.File{ready}
	}

	tr := &tracer{w: stderr, indent: "  "}
	start := time.Now()
	out, err := runCommand(ctx, processTask(s.timeout, s.stopTimeout), c, tr.callbacks())
	return demoRow{scenario: s, out: out, took: time.Since(start)}, err
}

// cancelWhenReady returns the write end of a pipe for a command to report
// that it is ready, by writing to it, and a function that closes the pipe.
// The first write calls cancel.
func cancelWhenReady(cancel context.CancelCauseFunc) (ready *os.File, stop func(), err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("create the pipe for the ready report: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Close ends the read of a pipe that never got a report.
		if _, err := r.Read(make([]byte, 1)); err == nil {
			cancel(errors.New("demo cancelled the run once the command was ready"))
		}
	}()
	return w, func() {
		w.Close()
		r.Close()
		<-done
	}, nil
}

// printTable prints the summary table of the demo.
func printTable(w io.Writer, rows []demoRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tSTATUS\tEXIT CODE\tTASKRUN EXIT\tPROCESS\tTOOK\tCHECK")
	for _, r := range rows {
		snap := r.out.Snapshot
		process := "not started"
		if r.out.PID != 0 {
			process = r.out.Exit.String()
		}
		if r.out.KilledAfterRun {
			process += ", after the run"
		}
		check := "ok"
		if !r.ok() {
			check = fmt.Sprintf("expected %s %s", r.scenario.wantStatus, r.scenario.wantCode)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%.2fs\t%s\n", r.scenario.name, snap.Status,
			snap.ExitCode, exitStatus(snap.ExitCode), process, r.took.Seconds(), check)
	}
	tw.Flush()
}

// quoteCommand returns argv as a shell would need it typed, for display.
func quoteCommand(argv []string) string {
	quoted := make([]string, len(argv))
	for i, arg := range argv {
		switch {
		case arg != "" && strings.Trim(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "":
			quoted[i] = arg
		case !strings.Contains(arg, "'"):
			quoted[i] = "'" + arg + "'"
		default:
			quoted[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "`", "\\`").Replace(arg) + `"`
		}
	}
	return strings.Join(quoted, " ")
}
