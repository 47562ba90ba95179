package tasktest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tasklife/task"
	"github.com/tasklife/task/tasktest"
)

// printTB prints what the helpers report instead of failing a test.
type printTB struct{}

func (printTB) Helper()                           {}
func (printTB) Errorf(format string, args ...any) { fmt.Printf(format+"\n", args...) }
func (printTB) Fatalf(format string, args ...any) { fmt.Printf(format+"\n", args...) }
func (printTB) Cleanup(func())                    {}

// t replaces the *testing.T of a test function, so that the examples read
// as test code and still run.
var t = printTB{}

// Record a run, then assert on its lifecycle.
func ExampleRecorder() {
	var rec tasktest.Recorder[string]
	work := tasktest.NewWork[string](t)
	inv := task.Task[string]{Work: work.Run}.Start(context.Background(),
		task.WithCallbacks(rec.Callbacks()))

	work.ReportProgress(1, 2)
	work.Return("ok")
	<-inv.Done()

	rec.RequireStatuses(t, task.StatusStarting, task.StatusStarted, task.StatusCompleted)
	rec.RequireExitCode(t, task.ExitCompleted)
	rec.RequireProgress(t, task.Progress{Done: 1, Total: 2})
	for _, e := range rec.Entries() {
		fmt.Println(e)
	}
	// Output:
	// -> STARTING on start
	// STARTING -> STARTED on begin
	// progress 1/2
	// STARTED -> COMPLETED on return (exit completed): result "ok"
}

// Wait until the work is running, cancel the run, and let the work return
// late. The return confirms the stop, and its value reaches the Ignored
// callback.
func ExampleWork() {
	var rec tasktest.Recorder[int]
	work := tasktest.NewWork[int](t)
	work.IgnoreContext()
	inv := task.Task[int]{Work: work.Run}.Start(context.Background(),
		task.WithCallbacks(rec.Callbacks()))

	work.WaitBegun()
	inv.Cancel(errors.New("user request"))
	fmt.Println(inv.Status())
	work.Return(42)
	_, err := inv.Wait(context.Background())

	fmt.Println(err)
	rec.RequireStatuses(t, task.StatusStarting, task.StatusStarted, task.StatusStopping,
		task.StatusStopped)
	rec.RequireIgnored(t, task.EventReturn)
	// Output:
	// STOPPING
	// task: canceled: user request
}

// A cancel function that fails leaves the run UNKNOWN, since the work may
// still run.
func ExampleCancel() {
	var rec tasktest.Recorder[int]
	work := tasktest.NewWork[int](t)
	work.IgnoreContext()
	cancel := tasktest.NewCancel[int](t)
	cancel.Fail(errors.New("kill: permission denied"))
	inv := task.Task[int]{Work: work.Run, Cancel: cancel.Run}.Start(context.Background(),
		task.WithCallbacks(rec.Callbacks()))

	work.WaitBegun()
	inv.Cancel(nil)
	_, err := inv.Wait(context.Background())

	fmt.Println(inv.Status(), inv.ExitCode())
	fmt.Println(err)
	rec.RequireExitCode(t, task.ExitCancelFailed)

	work.Return(7) // the work ends after all, too late to change the outcome
	rec.WaitIgnored(t, task.EventReturn)
	// Output:
	// UNKNOWN cancelFailed
	// task: stop failed: kill: permission denied (task: canceled)
}

// Inside a testing/synctest bubble the clock is fake, so a test of a
// 30-second Timeout and a 10-second StopTimeout runs in microseconds. This
// is the body of a test function, which an example cannot run; the same
// test runs as TestSynctestExample.
func Example_synctest() {
	testTimeout := func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var rec tasktest.Recorder[string]
			work := tasktest.NewWork[string](t)
			work.Hang() // an upstream that never responds and ignores cancellation
			cancel := tasktest.NewCancel[string](t)
			cancel.Hang()
			inv := task.Task[string]{Work: work.Run, Cancel: cancel.Run,
				Timeout: 30 * time.Second, StopTimeout: 10 * time.Second,
			}.Start(context.Background(), task.WithCallbacks(rec.Callbacks()))

			start := time.Now()
			<-inv.Done()

			rec.RequireStatuses(t, task.StatusStarting, task.StatusStarted,
				task.StatusStopping, task.StatusUnknown)
			rec.RequireExitCode(t, task.ExitCancelTimedOut)
			if elapsed := time.Since(start); elapsed != 40*time.Second {
				t.Fatalf("fake time elapsed %v, want 40s", elapsed)
			}
		})
	}
	_ = testTimeout
}
