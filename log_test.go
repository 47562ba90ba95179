package task_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
	"github.com/tasklife/task/internal/syncbuf"
	"github.com/tasklife/task/tasktest"
)

// logLines is a slog.Handler that keeps each record as one line: level,
// message and attributes in order, without the time.
type logLines struct {
	mu    sync.Mutex
	lines []string
	ctxs  []context.Context
}

func (h *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (h *logLines) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logLines) WithGroup(string) slog.Handler            { return h }

func (h *logLines) Handle(ctx context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += fmt.Sprintf(" %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, line)
	h.ctxs = append(h.ctxs, ctx)
	return nil
}

func (h *logLines) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.lines...)
}

func TestLogCallbacks(t *testing.T) {
	t.Run("completed run logs each transition", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := &logLines{}
			work := tasktest.NewWork[int](t)
			work.ReportProgress(1, 2)
			work.Return(1)
			inv := task.Task[int]{Work: work.Run}.Start(context.Background(), task.WithID("run-1"),
				task.WithCallbacks(task.LogCallbacks[int](slog.New(h))))
			<-inv.Done()

			assert.Equal(t, []string{
				"DEBUG task transition invocation_id=run-1 status=STARTING event=start exit_code=unknown elapsed=0s",
				"DEBUG task transition invocation_id=run-1 status=STARTED from=STARTING event=begin " +
					"exit_code=unknown elapsed=0s",
				"INFO task transition invocation_id=run-1 status=COMPLETED from=STARTED event=return " +
					"exit_code=completed elapsed=0s",
			}, h.list())
		})
	})
	t.Run("timeout and stop timeout logged", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := &logLines{}
			work := tasktest.NewWork[int](t)
			work.Hang()
			cancel := tasktest.NewCancel[int](t)
			inv := task.Task[int]{Work: work.Run, Cancel: cancel.Run,
				Timeout: 30 * time.Second, StopTimeout: 10 * time.Second,
			}.Start(context.Background(), task.WithID("run-1"),
				task.WithCallbacks(task.LogCallbacks[int](slog.New(h))))
			<-inv.Done()
			synctest.Wait() // the cancel function returns its context's cause, too late

			lines := h.list()
			require.Len(t, lines, 5)
			assert.Equal(t, "WARN task transition invocation_id=run-1 status=STOPPING from=STARTED "+
				"event=timeout exit_code=timedOut elapsed=30s cause=task: timed out after 30s", lines[2])
			assert.Equal(t, "ERROR task transition invocation_id=run-1 status=UNKNOWN from=STOPPING "+
				"event=stop_timeout exit_code=cancelTimedOut elapsed=40s "+
				"error=task: stop timed out after 10s (task: timed out after 30s)", lines[3])
			assert.Equal(t, "INFO task event ignored invocation_id=run-1 status=UNKNOWN event=stop_fail "+
				"exit_code=cancelTimedOut elapsed=40s error=task: stop timed out after 10s "+
				"(task: timed out after 30s)", lines[4])
		})
	})
	t.Run("failure and abandon at error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := &logLines{}
			work := tasktest.NewWork[int](t)
			work.Fail(errors.New("disk full"))
			hold := make(chan struct{})
			slow := task.Callbacks[int]{Failed: func(*task.Invocation[int], error) { <-hold }}
			inv := task.Task[int]{Work: work.Run}.Start(context.Background(), task.WithID("run-1"),
				task.WithCallbacks(slow), task.WithCallbacks(task.LogCallbacks[int](slog.New(h))))
			synctest.Wait() // the work's goroutine waits in the Failed callback

			// The FAILED record is logged after Abandon, and still shows
			// the error the run had when it failed.
			require.True(t, inv.Abandon(errors.New("bad record")))
			close(hold)
			synctest.Wait()
			assert.False(t, inv.Abandon(nil))

			lines := h.list()
			require.Len(t, lines, 5)
			assert.Equal(t, "ERROR task transition invocation_id=run-1 status=FAILED from=STARTED "+
				"event=fail exit_code=failed elapsed=0s error=task: failed: disk full", lines[2])
			assert.Equal(t, "ERROR task transition invocation_id=run-1 status=ABANDONED from=FAILED "+
				"event=abandon exit_code=failed elapsed=0s "+
				"error=task: abandoned: bad record (task: failed: disk full)", lines[3])
			assert.Equal(t, "INFO task event ignored invocation_id=run-1 status=ABANDONED event=abandon "+
				"exit_code=failed elapsed=0s", lines[4])
		})
	})
	t.Run("cancel logged at info", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := &logLines{}
			work := tasktest.NewWork[int](t)
			inv := task.Task[int]{Work: work.Run}.Start(context.Background(), task.WithID("run-1"),
				task.WithCallbacks(task.LogCallbacks[int](slog.New(h))))
			work.WaitBegun()
			inv.Cancel(errors.New("user request"))
			<-inv.Done()

			assert.Equal(t, []string{
				"INFO task transition invocation_id=run-1 status=STOPPING from=STARTED event=cancel " +
					"exit_code=canceled elapsed=0s cause=task: canceled: user request",
				"INFO task event ignored invocation_id=run-1 status=STOPPING event=fail " +
					"exit_code=canceled elapsed=0s error=task: canceled: user request",
				"INFO task transition invocation_id=run-1 status=STOPPED from=STOPPING event=fail " +
					"exit_code=canceled elapsed=0s error=task: canceled: user request",
			}, h.list()[2:])
		})
	})
	t.Run("late failure logged at warn", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := &logLines{}
			work := tasktest.NewWork[int](t)
			work.IgnoreContext()
			cancel := tasktest.NewCancel[int](t)
			cancel.Confirm()
			inv := task.Task[int]{Work: work.Run, Cancel: cancel.Run}.Start(context.Background(),
				task.WithID("run-1"), task.WithCallbacks(task.LogCallbacks[int](slog.New(h))))
			work.WaitBegun()
			inv.Cancel(nil)
			<-inv.Done()
			work.Fail(errors.New("disk full"))
			synctest.Wait()

			lines := h.list()
			require.Len(t, lines, 5)
			assert.Equal(t, "WARN task event ignored invocation_id=run-1 status=STOPPED event=fail "+
				"exit_code=canceled elapsed=0s error=disk full", lines[4])
		})
	})
	t.Run("invalid run logged at error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := &logLines{}
			inv := task.Task[int]{}.Start(context.Background(), task.WithID("run-1"),
				task.WithCallbacks(task.LogCallbacks[int](slog.New(h))))
			assert.Equal(t, []string{"ERROR task transition invocation_id=run-1 status=FAILED event=invalid " +
				"exit_code=failed elapsed=0s error=task: invalid Work: nil; " +
				"set it to the function that does the work"}, h.list())
			assert.Equal(t, task.StatusFailed, inv.Status())
		})
	})
	t.Run("records carry the start context", func(t *testing.T) {
		type key struct{}
		h := &logLines{}
		ctx := context.WithValue(context.Background(), key{}, "trace-1")
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}.
			Start(ctx, task.WithCallbacks(task.LogCallbacks[int](slog.New(h))))
		<-inv.Done()
		h.mu.Lock()
		defer h.mu.Unlock()
		require.Len(t, h.ctxs, 3)
		for _, c := range h.ctxs {
			assert.Equal(t, "trace-1", c.Value(key{}))
		}
	})
	t.Run("levels below the handler skipped", func(t *testing.T) {
		var buf syncbuf.Buffer
		l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}.
			Start(context.Background(), task.WithCallbacks(task.LogCallbacks[int](l)))
		<-inv.Done()
		assert.NotContains(t, buf.String(), "STARTING")
		assert.Contains(t, buf.String(), "status=COMPLETED")
	})
	t.Run("nil logger logs nothing", func(t *testing.T) {
		assert.Equal(t, task.Callbacks[int]{}, task.LogCallbacks[int](nil))
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}.
			Start(context.Background(), task.WithCallbacks(task.LogCallbacks[int](nil)))
		_, err := inv.Wait(context.Background())
		assert.NoError(t, err)
	})
}
