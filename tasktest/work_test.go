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

func TestWork_Steps(t *testing.T) {
	errDisk := errors.New("disk full")
	cases := []struct {
		name     string
		script   func(w *tasktest.Work[string])
		statuses []task.Status
		code     task.ExitCode
		check    func(t *testing.T, v string, err error)
	}{
		{"return completes the run", func(w *tasktest.Work[string]) { w.Return("ok") },
			[]task.Status{task.StatusStarting, task.StatusStarted, task.StatusCompleted}, task.ExitCompleted,
			func(t *testing.T, v string, err error) {
				assert.NoError(t, err)
				assert.Equal(t, "ok", v)
			}},
		{"fail fails the run", func(w *tasktest.Work[string]) { w.Fail(errDisk) },
			[]task.Status{task.StatusStarting, task.StatusStarted, task.StatusFailed}, task.ExitFailed,
			func(t *testing.T, _ string, err error) { assert.ErrorIs(t, err, errDisk) }},
		{"permanent failure abandons the run", func(w *tasktest.Work[string]) { w.FailPermanent(errDisk) },
			[]task.Status{task.StatusStarting, task.StatusStarted, task.StatusAbandoned}, task.ExitFailed,
			func(t *testing.T, _ string, err error) {
				assert.ErrorIs(t, err, task.ErrAbandoned)
				assert.ErrorIs(t, err, errDisk)
			}},
		{"panic fails with PanicError", func(w *tasktest.Work[string]) { w.Panic("boom") },
			[]task.Status{task.StatusStarting, task.StatusStarted, task.StatusFailed}, task.ExitFailed,
			func(t *testing.T, _ string, err error) {
				var p *task.PanicError
				require.ErrorAs(t, err, &p)
				assert.Equal(t, "boom", p.Value)
			}},
		{"goexit fails the run", func(w *tasktest.Work[string]) { w.Goexit() },
			[]task.Status{task.StatusStarting, task.StatusStarted, task.StatusFailed}, task.ExitFailed,
			func(t *testing.T, _ string, err error) { assert.ErrorContains(t, err, "exited without returning") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var rec tasktest.Recorder[string]
				work := tasktest.NewWork[string](t)
				c.script(work) // before the work begins: the step waits for it
				inv := task.Task[string]{Work: work.Run}.Start(context.Background(),
					task.WithCallbacks(rec.Callbacks()))
				v, err := inv.Wait(context.Background())
				c.check(t, v, err)
				rec.RequireStatuses(t, c.statuses...)
				rec.RequireExitCode(t, c.code)
			})
		})
	}
}

func TestWork_Blocking(t *testing.T) {
	t.Run("blocks until a step", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var rec tasktest.Recorder[int]
			work := tasktest.NewWork[int](t)
			inv := task.Task[int]{Work: work.Run}.Start(context.Background(), task.WithCallbacks(rec.Callbacks()))
			work.WaitBegun()
			work.ReportProgress(1, 3)
			work.ReportProgress(2, 3)
			time.Sleep(time.Hour) // fake time: nothing ends the work but a step
			assert.Equal(t, task.StatusStarted, inv.Status())

			work.Return(3)
			v, err := inv.Wait(context.Background())
			require.NoError(t, err)
			assert.Equal(t, 3, v)
			rec.RequireProgress(t, task.Progress{Done: 1, Total: 3}, task.Progress{Done: 2, Total: 3})
		})
	})
	t.Run("returns the context's cause", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var rec tasktest.Recorder[int]
			work := tasktest.NewWork[int](t)
			errUser := errors.New("user request")
			inv := task.Task[int]{Work: work.Run}.Start(context.Background(), task.WithCallbacks(rec.Callbacks()))
			work.WaitBegun()
			inv.Cancel(errUser)
			_, err := inv.Wait(context.Background())
			assert.ErrorIs(t, err, errUser)
			rec.RequireStatuses(t, task.StatusStarting, task.StatusStarted, task.StatusStopping,
				task.StatusStopped)
			rec.RequireIgnored(t, task.EventFail)
			assert.ErrorIs(t, rec.Entries()[3].Ignored.Err, errUser, "the work returned the cause")
		})
	})
	t.Run("ignoring the context keeps stopping", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var rec tasktest.Recorder[int]
			work := tasktest.NewWork[int](t)
			work.IgnoreContext()
			inv := task.Task[int]{Work: work.Run}.Start(context.Background(), task.WithCallbacks(rec.Callbacks()))
			work.WaitBegun()
			inv.Cancel(nil)
			time.Sleep(time.Hour)
			assert.Equal(t, task.StatusStopping, inv.Status())

			work.Return(5) // the late return confirms the stop
			<-inv.Done()
			rec.RequireStatuses(t, task.StatusStarting, task.StatusStarted, task.StatusStopping,
				task.StatusStopped)
			rec.RequireIgnored(t, task.EventReturn)
			rec.RequireExitCode(t, task.ExitCanceled)
		})
	})
	t.Run("hang outlives the stop timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var rec tasktest.Recorder[int]
			work := tasktest.NewWork[int](t)
			work.Hang()
			inv := task.Task[int]{Work: work.Run, Timeout: 30 * time.Second, StopTimeout: 10 * time.Second}.
				Start(context.Background(), task.WithCallbacks(rec.Callbacks()))
			start := time.Now()
			_, err := inv.Wait(context.Background())
			assert.Equal(t, 40*time.Second, time.Since(start))
			assert.ErrorIs(t, err, task.ErrStopTimedOut)
			rec.RequireStatuses(t, task.StatusStarting, task.StatusStarted, task.StatusStopping,
				task.StatusUnknown)
			assert.True(t, inv.Snapshot().WorkRunning, "the work still hangs")
			// The end of the test releases the work, and synctest.Test
			// waits for its goroutine.
		})
	})
	t.Run("queued step beats ended context", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var rec tasktest.Recorder[int]
			work := tasktest.NewWork[int](t)
			work.IgnoreContext()
			inv := task.Task[int]{Work: work.Run}.Start(context.Background(), task.WithCallbacks(rec.Callbacks()))
			work.WaitBegun()
			inv.Cancel(nil)
			work.Return(9)
			<-inv.Done()
			rec.RequireIgnored(t, task.EventReturn)
			assert.Equal(t, 9, rec.Entries()[3].Ignored.Value)
		})
	})
}

func TestWork_Misuse(t *testing.T) {
	errDisk := errors.New("disk full")
	t.Run("step after return fails", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newFakeTB(t)
			work := tasktest.NewWork[string](tb)
			work.Return("ok")
			<-task.Task[string]{Work: work.Run}.Start(context.Background()).Done()
			msg := tb.fatalOf(func() { work.Return("again") })
			assert.Equal(t, `tasktest: Work.Return("again"): the work function is not blocked: `+
				`it already ended with Return("ok"), so nothing runs this step`, msg)
		})
	})
	t.Run("step after context end fails", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newFakeTB(t)
			work := tasktest.NewWork[string](tb)
			inv := task.Task[string]{Work: work.Run}.Start(context.Background())
			work.WaitBegun()
			inv.Cancel(errors.New("user request"))
			<-inv.Done()
			msg := tb.fatalOf(func() { work.Fail(errDisk) })
			assert.Equal(t, `tasktest: Work.Fail("disk full"): the work function is not blocked: `+
				`it already ended with the context's cause: "task: canceled: user request", `+
				`so nothing runs this step`, msg)
		})
	})
	t.Run("second ending step fails", func(t *testing.T) {
		tb := newFakeTB(t)
		work := tasktest.NewWork[string](tb)
		work.Return("ok")
		msg := tb.fatalOf(func() { work.Panic("boom") })
		assert.Equal(t, `tasktest: Work.Panic("boom"): Return("ok") is already queued, `+
			`and the work function ends only once`, msg)
	})
	t.Run("nil test panics with message", func(t *testing.T) {
		assert.PanicsWithValue(t, "tasktest: NewWork(nil): pass the test's t",
			func() { tasktest.NewWork[int](nil) })
		assert.PanicsWithValue(t, "tasktest: NewCancel(nil): pass the test's t",
			func() { tasktest.NewCancel[int](nil) })
	})
	t.Run("nil errors fail", func(t *testing.T) {
		tb := newFakeTB(t)
		work := tasktest.NewWork[string](tb)
		assert.Equal(t, "tasktest: Work.Fail(nil): a nil error completes the run; use Return for a success",
			tb.fatalOf(func() { work.Fail(nil) }))
		assert.Equal(t, "tasktest: Work.FailPermanent(nil): task.Permanent(nil) is nil, which completes the run",
			tb.fatalOf(func() { work.FailPermanent(nil) }))
	})
	t.Run("step after hang fails", func(t *testing.T) {
		tb := newFakeTB(t)
		work := tasktest.NewWork[string](tb)
		work.Hang()
		assert.Equal(t, "tasktest: Work.Goexit(): the work function hangs since Hang was called, "+
			"and only the end of the test releases it", tb.fatalOf(work.Goexit))
	})
	t.Run("hang after step fails", func(t *testing.T) {
		tb := newFakeTB(t)
		work := tasktest.NewWork[string](tb)
		work.ReportProgress(1, 2)
		assert.Equal(t, "tasktest: Work.Hang(): steps are queued for the work function, "+
			"starting with ReportProgress(1, 2)", tb.fatalOf(work.Hang))
	})
	t.Run("second run reported", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newFakeTB(t)
			work := tasktest.NewWork[string](tb)
			work.Return("ok")
			tk := task.Task[string]{Work: work.Run}
			<-tk.Start(context.Background()).Done()
			_, err := tk.Start(context.Background()).Wait(context.Background())
			assert.ErrorContains(t, err, "tasktest: Work.Run called a second time")
			assert.Equal(t, []string{"tasktest: Work.Run called a second time: a Work serves one run; " +
				"make one per Start"}, tb.errorList())
		})
	})
	t.Run("steps never run reported", func(t *testing.T) {
		tb := &fakeTB{}
		work := tasktest.NewWork[string](tb)
		work.ReportProgress(1, 2)
		work.Return("ok")
		tb.runCleanups()
		assert.Equal(t, []string{`tasktest: Work: 2 steps never ran, [ReportProgress(1, 2) Return("ok")]: ` +
			"it was never called; check that the task uses Work.Run"}, tb.errorList())
	})
	t.Run("wait for unused work fails", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newFakeTB(t)
			work := tasktest.NewWork[string](tb)
			start := time.Now()
			msg := tb.fatalOf(work.WaitBegun)
			assert.Equal(t, "tasktest: Work.WaitBegun(): the work function was not called within 1m0s: "+
				"check that the task uses Work.Run, and that the run did not end before it needed "+
				"the work function", msg)
			assert.Equal(t, time.Minute, time.Since(start), "fake time")
		})
	})
	t.Run("test end releases blocked work", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := &fakeTB{}
			work := tasktest.NewWork[string](tb)
			inv := task.Task[string]{Work: work.Run}.Start(context.Background())
			work.WaitBegun()
			tb.runCleanups()
			_, err := inv.Wait(context.Background())
			assert.ErrorContains(t, err, "tasktest: released because the test ended")
			assert.Empty(t, tb.errorList())
		})
	})
}

func TestWork_IgnoreContext(t *testing.T) {
	t.Run("takes effect while blocked", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			work := tasktest.NewWork[int](t)
			inv := task.Task[int]{Work: work.Run}.Start(context.Background())
			work.WaitBegun()
			work.IgnoreContext()
			inv.Cancel(nil)
			synctest.Wait()
			assert.Equal(t, task.StatusStopping, inv.Status())
			work.Return(1)
			<-inv.Done()
		})
	})
}
