package tasktest_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tasklife/task"
	"github.com/tasklife/task/tasktest"
)

// TestSynctestExample runs the test that Example_synctest shows.
func TestSynctestExample(t *testing.T) {
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
