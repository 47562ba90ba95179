package tasktest_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
	"github.com/tasklife/task/tasktest"
)

func TestRecorder_Callbacks(t *testing.T) {
	t.Run("records every event in order", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var rec tasktest.Recorder[string]
			work := tasktest.NewWork[string](t)
			start := time.Now()
			inv := task.Task[string]{Work: work.Run}.Start(context.Background(),
				task.WithCallbacks(rec.Callbacks()))
			work.ReportProgress(1, 2)
			work.Return("ok")
			<-inv.Done()
			assert.False(t, inv.ReportProgress(2, 2))
			rec.WaitIgnored(t, task.EventProgress)

			entries := rec.Entries()
			require.Len(t, entries, 5)
			kinds := []tasktest.EntryKind{tasktest.KindTransition, tasktest.KindTransition,
				tasktest.KindProgress, tasktest.KindTransition, tasktest.KindIgnored}
			for i, e := range entries {
				assert.Equal(t, kinds[i], e.Kind, "entry %d", i)
				assert.Equal(t, start, e.At, "entry %d", i)
			}
			assert.Equal(t, task.Progress{Done: 1, Total: 2}, entries[2].Progress)
			assert.Equal(t, "ok", entries[3].Result)
			assert.Equal(t, task.EventProgress, entries[4].Ignored.Event)
			assert.Equal(t, inv.Snapshot().History[2], entries[3].Transition)
			assert.Equal(t, []task.Status{task.StatusStarting, task.StatusStarted, task.StatusCompleted},
				rec.Statuses())
		})
	})
	t.Run("history shows times and errors", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var rec tasktest.Recorder[int]
			work := tasktest.NewWork[int](t)
			cancel := tasktest.NewCancel[int](t)
			work.IgnoreContext()
			cancel.IgnoreContext()
			inv := task.Task[int]{Work: work.Run, Cancel: cancel.Run,
				Timeout: 30 * time.Second, StopTimeout: 10 * time.Second,
			}.Start(context.Background(), task.WithID("run-1"), task.WithCallbacks(rec.Callbacks()))
			<-inv.Done()
			cancel.Fail(errors.New("kill: permission denied"))
			rec.WaitIgnored(t, task.EventStopFail)
			work.Return(7)
			rec.WaitIgnored(t, task.EventReturn)
			require.True(t, inv.Abandon(errors.New("gave up")))
			rec.WaitStatus(t, task.StatusAbandoned)

			want := `history of invocation run-1:
  +0s        -> STARTING on start
  +0s        STARTING -> STARTED on begin
  +30s       STARTED -> STOPPING on timeout (exit timedOut): task: timed out after 30s
  +40s       STOPPING -> UNKNOWN on stop_timeout (exit cancelTimedOut): ` +
				`task: stop timed out after 10s (task: timed out after 30s)
  +40s       ignored stop_fail in UNKNOWN: kill: permission denied
  +40s       ignored return in UNKNOWN: value 7
  +40s       UNKNOWN -> ABANDONED on abandon (exit cancelTimedOut): task: abandoned: gave up ` +
				`(task: stop timed out after 10s (task: timed out after 30s))`
			assert.Equal(t, want, rec.String())
		})
	})
}

func TestRecorder_Require(t *testing.T) {
	// completed returns a recorder of a run that completed with "ok", in a
	// bubble so that the history's times are fixed.
	completed := func(t *testing.T) *tasktest.Recorder[string] {
		rec := new(tasktest.Recorder[string])
		work := tasktest.NewWork[string](t)
		work.Return("ok")
		inv := task.Task[string]{Work: work.Run}.Start(context.Background(),
			task.WithID("run-1"), task.WithCallbacks(rec.Callbacks()))
		<-inv.Done()
		return rec
	}
	const history = `
history of invocation run-1:
  +0s        -> STARTING on start
  +0s        STARTING -> STARTED on begin
  +0s        STARTED -> COMPLETED on return (exit completed): result "ok"`

	cases := []struct {
		name    string
		require func(tb tasktest.TB, rec *tasktest.Recorder[string])
		want    string // the Fatalf message; empty when the assertion holds
	}{
		{"matching statuses pass", func(tb tasktest.TB, rec *tasktest.Recorder[string]) {
			rec.RequireStatuses(tb, task.StatusStarting, task.StatusStarted, task.StatusCompleted)
		}, ""},
		{"other statuses print history", func(tb tasktest.TB, rec *tasktest.Recorder[string]) {
			rec.RequireStatuses(tb, task.StatusStarting, task.StatusStarted, task.StatusStopping,
				task.StatusStopped)
		}, "tasktest: statuses [STARTING STARTED COMPLETED], want [STARTING STARTED STOPPING STOPPED]" +
			history},
		{"matching exit code passes", func(tb tasktest.TB, rec *tasktest.Recorder[string]) {
			rec.RequireExitCode(tb, task.ExitCompleted)
		}, ""},
		{"other exit code prints history", func(tb tasktest.TB, rec *tasktest.Recorder[string]) {
			rec.RequireExitCode(tb, task.ExitTimedOut)
		}, "tasktest: exit code completed, want timedOut" + history},
		{"no ignored events pass", func(tb tasktest.TB, rec *tasktest.Recorder[string]) {
			rec.RequireIgnored(tb)
		}, ""},
		{"missing ignored event fails", func(tb tasktest.TB, rec *tasktest.Recorder[string]) {
			rec.RequireIgnored(tb, task.EventCancel)
		}, "tasktest: ignored events [], want [cancel]" + history},
		{"missing progress fails", func(tb tasktest.TB, rec *tasktest.Recorder[string]) {
			rec.RequireProgress(tb, task.Progress{Done: 1})
		}, "tasktest: progress [], want [{1 0}]" + history},
		{"wait for reached status passes", func(tb tasktest.TB, rec *tasktest.Recorder[string]) {
			rec.WaitStatus(tb, task.StatusCompleted)
		}, ""},
		{"wait for unreachable status fails", func(tb tasktest.TB, rec *tasktest.Recorder[string]) {
			rec.WaitStatus(tb, task.StatusStopping)
		}, "tasktest: WaitStatus(STOPPING): the run ended COMPLETED without reaching STOPPING" + history},
		{"wait for absent ignored event fails", func(tb tasktest.TB, rec *tasktest.Recorder[string]) {
			rec.WaitIgnored(tb, task.EventCancel)
		}, "tasktest: WaitIgnored(cancel): not recorded within 1m0s" + history},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := completed(t)
				tb := newFakeTB(t)
				assert.Equal(t, c.want, tb.fatalOf(func() { c.require(tb, rec) }))
			})
		})
	}
}

func TestRecorder_Misuse(t *testing.T) {
	t.Run("nil recorder fails assertions", func(t *testing.T) {
		var rec *tasktest.Recorder[int]
		assert.Equal(t, task.Callbacks[int]{}, rec.Callbacks())
		assert.Nil(t, rec.Entries())
		assert.Equal(t, "<nil *tasktest.Recorder>", rec.String())
		tb := newFakeTB(t)
		assert.Equal(t, "tasktest: RequireStatuses: nil *Recorder: declare a Recorder value, "+
			"or use new(tasktest.Recorder[T])",
			tb.fatalOf(func() { rec.RequireStatuses(tb, task.StatusStarting) }))
		assert.Equal(t, "tasktest: WaitStatus(STARTING): nil *Recorder: declare a Recorder value, "+
			"or use new(tasktest.Recorder[T])",
			tb.fatalOf(func() { rec.WaitStatus(tb, task.StatusStarting) }))
	})
	t.Run("run never started fails assertions", func(t *testing.T) {
		var rec tasktest.Recorder[int]
		tb := newFakeTB(t)
		msg := tb.fatalOf(func() { rec.RequireExitCode(tb, task.ExitCompleted) })
		assert.Equal(t, "tasktest: RequireExitCode: the recorder has recorded nothing: start the run "+
			"with task.WithCallbacks(rec.Callbacks()), and check that Start was called", msg)
		assert.Equal(t, "history: nothing recorded", rec.String())
	})
	t.Run("second invocation fails assertions", func(t *testing.T) {
		var rec tasktest.Recorder[int]
		tk := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}
		<-tk.Start(context.Background(), task.WithID("a"), task.WithCallbacks(rec.Callbacks())).Done()
		<-tk.Start(context.Background(), task.WithID("b"), task.WithCallbacks(rec.Callbacks())).Done()

		assert.Equal(t, []task.Status{task.StatusStarting, task.StatusStarted, task.StatusCompleted},
			rec.Statuses(), "only the first invocation recorded")
		tb := newFakeTB(t)
		msg := tb.fatalOf(func() { rec.RequireStatuses(tb) })
		assert.Contains(t, msg, "tasktest: RequireStatuses: callbacks of a second invocation b reached "+
			"this recorder, which records one invocation; give each Start its own Recorder\n"+
			"history of invocation a:\n")
	})
}

func TestRecorder_WaitStatus(t *testing.T) {
	t.Run("waits for callbacks on another goroutine", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var rec tasktest.Recorder[int]
			work := tasktest.NewWork[int](t)
			release := make(chan struct{})
			hold := task.Callbacks[int]{Failed: func(*task.Invocation[int], error) { <-release }}
			inv := task.Task[int]{Work: work.Run}.Start(context.Background(),
				task.WithCallbacks(hold), task.WithCallbacks(rec.Callbacks()))
			work.Fail(errors.New("disk full"))
			synctest.Wait() // the work's goroutine now runs the Failed callback

			// Abandon queues its callbacks behind the work's goroutine.
			require.True(t, inv.Abandon(errors.New("bad record")))
			assert.NotContains(t, rec.Statuses(), task.StatusAbandoned)
			close(release)
			rec.WaitStatus(t, task.StatusAbandoned)
			rec.RequireStatuses(t, task.StatusStarting, task.StatusStarted, task.StatusFailed,
				task.StatusAbandoned)
		})
	})
}

func TestEntry_String(t *testing.T) {
	cases := []struct {
		name  string
		entry tasktest.Entry[[]byte]
		want  string
	}{
		{"byte result quoted", tasktest.Entry[[]byte]{Kind: tasktest.KindTransition,
			Transition: task.Transition{From: task.StatusStarted, To: task.StatusCompleted,
				Event: task.EventReturn, ExitCode: task.ExitCompleted},
			Result: []byte("report")},
			`STARTED -> COMPLETED on return (exit completed): result "report"`},
		{"late byte value quoted", tasktest.Entry[[]byte]{Kind: tasktest.KindIgnored,
			Ignored: task.Ignored[[]byte]{Event: task.EventReturn, Status: task.StatusUnknown,
				Value: []byte("late")}},
			`ignored return in UNKNOWN: value "late"`},
		{"undefined kind named", tasktest.Entry[[]byte]{Kind: 9}, "EntryKind(9)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, c.entry.String())
		})
	}
}
