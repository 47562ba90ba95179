//go:build unix

package main

import (
	"fmt"
	"io"
	"time"

	"github.com/tasklife/task"
)

// tracer prints a line to w for each transition and each ignored event of
// one run, as it happens, with the time since the run started:
//
//	0.300s  STARTED   -> STOPPING   timeout       timedOut: task: timed out after 300ms
//	0.301s  ignored      fail          in STOPPING: pid 4242 killed by signal terminated
//	0.301s  STOPPING  -> STOPPED    fail          timedOut: task: timed out after 300ms
//
// Its callbacks run one at a time, as the library runs them, so it needs
// no lock.
type tracer struct {
	w      io.Writer
	indent string
	start  time.Time // when the run started: the time of its first transition
}

func (tr *tracer) callbacks() task.Callbacks[*processExit] {
	return task.Callbacks[*processExit]{Changed: tr.transition, Ignored: tr.ignored}
}

func (tr *tracer) transition(inv *task.Invocation[*processExit], t task.Transition) {
	if t.From == 0 {
		tr.start = t.At
	}
	from := t.From.String()
	if from == "" {
		from = "-"
	}
	line := fmt.Sprintf("%s%7.3fs  %-9s -> %-9s  %-12s  %s", tr.indent,
		t.At.Sub(tr.start).Seconds(), from, t.To, t.Event, t.ExitCode)
	// Why the run is stopping, or why it ended. Nothing in taskrun calls
	// Abandon, so a finished run's error is still the one of this
	// transition.
	var reason error
	switch {
	case t.To == task.StatusStopping:
		reason = inv.Snapshot().Cause
	case t.To.Finished():
		_, reason = inv.Result()
	}
	if reason != nil {
		line += ": " + reason.Error()
	}
	fmt.Fprintln(tr.w, line)
}

func (tr *tracer) ignored(_ *task.Invocation[*processExit], e task.Ignored[*processExit]) {
	line := fmt.Sprintf("%s%7.3fs  ignored      %-12s  in %s", tr.indent,
		e.At.Sub(tr.start).Seconds(), e.Event, e.Status)
	// The work's error only retells its value, the process exit.
	switch {
	case e.Value != nil:
		line += ": " + e.Value.String()
	case e.Err != nil:
		line += ": " + e.Err.Error()
	}
	fmt.Fprintln(tr.w, line)
}
