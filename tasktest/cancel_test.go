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

func TestCancel_Steps(t *testing.T) {
	errKill := errors.New("kill: permission denied")
	cases := []struct {
		name     string
		script   func(c *tasktest.Cancel[int])
		statuses []task.Status
		code     task.ExitCode
		check    func(t *testing.T, err error)
	}{
		{"confirm stops the run", func(c *tasktest.Cancel[int]) { c.Confirm() },
			[]task.Status{task.StatusStarting, task.StatusStarted, task.StatusStopping, task.StatusStopped},
			task.ExitTimedOut, func(t *testing.T, err error) { assert.ErrorIs(t, err, task.ErrTimedOut) }},
		{"fail ends unknown", func(c *tasktest.Cancel[int]) { c.Fail(errKill) },
			[]task.Status{task.StatusStarting, task.StatusStarted, task.StatusStopping, task.StatusUnknown},
			task.ExitCancelFailed, func(t *testing.T, err error) {
				assert.ErrorIs(t, err, task.ErrStopFailed)
				assert.ErrorIs(t, err, errKill)
			}},
		{"panic ends unknown", func(c *tasktest.Cancel[int]) { c.Panic("cannot stop") },
			[]task.Status{task.StatusStarting, task.StatusStarted, task.StatusStopping, task.StatusUnknown},
			task.ExitCancelFailed, func(t *testing.T, err error) {
				var p *task.PanicError
				require.ErrorAs(t, err, &p)
				assert.Equal(t, "cannot stop", p.Value)
			}},
		{"goexit ends unknown", func(c *tasktest.Cancel[int]) { c.Goexit() },
			[]task.Status{task.StatusStarting, task.StatusStarted, task.StatusStopping, task.StatusUnknown},
			task.ExitCancelFailed,
			func(t *testing.T, err error) { assert.ErrorContains(t, err, "exited without returning") }},
		{"hang ends with stop timeout", func(c *tasktest.Cancel[int]) { c.Hang() },
			[]task.Status{task.StatusStarting, task.StatusStarted, task.StatusStopping, task.StatusUnknown},
			task.ExitCancelTimedOut, func(t *testing.T, err error) { assert.ErrorIs(t, err, task.ErrStopTimedOut) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var rec tasktest.Recorder[int]
				work := tasktest.NewWork[int](t)
				work.Hang()
				cancel := tasktest.NewCancel[int](t)
				c.script(cancel)
				inv := task.Task[int]{Work: work.Run, Cancel: cancel.Run,
					Timeout: 30 * time.Second, StopTimeout: 10 * time.Second,
				}.Start(context.Background(), task.WithCallbacks(rec.Callbacks()))
				_, err := inv.Wait(context.Background())
				c.check(t, err)
				rec.RequireStatuses(t, c.statuses...)
				rec.RequireExitCode(t, c.code)
			})
		})
	}
}

func TestCancel_Blocking(t *testing.T) {
	t.Run("called after the work's context ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			work := tasktest.NewWork[int](t)
			work.IgnoreContext()
			cancel := tasktest.NewCancel[int](t)
			inv := task.Task[int]{Work: work.Run, Cancel: cancel.Run, Timeout: 30 * time.Second}.
				Start(context.Background())
			start := time.Now()
			cancel.WaitCalled()
			assert.Equal(t, 30*time.Second, time.Since(start))
			assert.Equal(t, task.StatusStopping, inv.Status())

			cancel.Confirm()
			_, err := inv.Wait(context.Background())
			assert.ErrorIs(t, err, task.ErrTimedOut)
			work.Return(1)
		})
	})
	t.Run("late answer after stop timeout ignored", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var rec tasktest.Recorder[int]
			work := tasktest.NewWork[int](t)
			work.Hang()
			cancel := tasktest.NewCancel[int](t)
			inv := task.Task[int]{Work: work.Run, Cancel: cancel.Run,
				Timeout: 30 * time.Second, StopTimeout: 10 * time.Second,
			}.Start(context.Background(), task.WithCallbacks(rec.Callbacks()))
			<-inv.Done()
			rec.WaitIgnored(t, task.EventStopFail) // the cancel function returned its context's cause
			rec.RequireExitCode(t, task.ExitCancelTimedOut)
			assert.ErrorIs(t, rec.Entries()[4].Ignored.Err, task.ErrStopTimedOut)
		})
	})
	t.Run("ignoring the context answers late", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var rec tasktest.Recorder[int]
			work := tasktest.NewWork[int](t)
			work.Hang()
			cancel := tasktest.NewCancel[int](t)
			cancel.IgnoreContext()
			inv := task.Task[int]{Work: work.Run, Cancel: cancel.Run,
				Timeout: 30 * time.Second, StopTimeout: 10 * time.Second,
			}.Start(context.Background(), task.WithCallbacks(rec.Callbacks()))
			<-inv.Done()
			time.Sleep(time.Hour)
			rec.RequireIgnored(t)

			cancel.Confirm()
			rec.WaitIgnored(t, task.EventConfirm)
			rec.RequireExitCode(t, task.ExitCancelTimedOut)
		})
	})
}

func TestCancel_Misuse(t *testing.T) {
	t.Run("confirm after return fails", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newFakeTB(t)
			work := tasktest.NewWork[int](t)
			cancel := tasktest.NewCancel[int](tb)
			cancel.Confirm()
			inv := task.Task[int]{Work: work.Run, Cancel: cancel.Run}.Start(context.Background())
			work.WaitBegun()
			inv.Cancel(nil)
			<-inv.Done()
			synctest.Wait()
			assert.Equal(t, "tasktest: Cancel.Confirm(): the cancel function is not blocked: "+
				"it already ended with Confirm(), so nothing runs this step", tb.fatalOf(cancel.Confirm))
		})
	})
	t.Run("nil error fails", func(t *testing.T) {
		tb := newFakeTB(t)
		cancel := tasktest.NewCancel[int](tb)
		assert.Equal(t, "tasktest: Cancel.Fail(nil): a nil error confirms the stop; use Confirm",
			tb.fatalOf(func() { cancel.Fail(nil) }))
	})
	t.Run("wait for uncalled cancel fails", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tb := newFakeTB(t)
			cancel := tasktest.NewCancel[int](tb)
			<-task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil }),
				Cancel: cancel.Run}.Start(context.Background()).Done()
			assert.Equal(t, "tasktest: Cancel.WaitCalled(): the cancel function was not called within 1m0s: "+
				"check that the task uses Cancel.Run, and that the run did not end before it needed "+
				"the cancel function", tb.fatalOf(cancel.WaitCalled))
		})
	})
	t.Run("unused step reported", func(t *testing.T) {
		tb := &fakeTB{}
		cancel := tasktest.NewCancel[int](tb)
		cancel.Fail(errors.New("kill: permission denied"))
		tb.runCleanups()
		assert.Equal(t, []string{`tasktest: Cancel: a step never ran, [Fail("kill: permission denied")]: ` +
			"it was never called; check that the task uses Cancel.Run"}, tb.errorList())
	})
}
