package taskriver_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
	"github.com/tasklife/task/internal/syncbuf"
	taskriver "github.com/tasklife/task/river"
)

type hugeArgs struct{}

func (hugeArgs) Kind() string { return "huge_result" }

type longErrorArgs struct{}

func (longErrorArgs) Kind() string { return "long_error" }

type channelArgs struct{}

func (channelArgs) Kind() string { return "channel_result" }

// TestWorker_UnstoredResultIsNotCompleted runs tasks whose results cannot
// be stored, one too large for River's output and one that JSON cannot
// hold, on an in-process SQLite setup. Neither job may read as completed
// with a zero result.
func TestWorker_UnstoredResultIsNotCompleted(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)

	_, driver := openSQLite(t, ctx)

	var logs syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	huge, err := taskriver.NewWorker[*sql.Tx, hugeArgs](task.Task[string]{
		Work: func(context.Context, *task.Invocation[string]) (string, error) {
			return strings.Repeat("x", 33<<20), nil
		},
	}, &taskriver.WorkerConfig{Logger: logger})
	require.NoError(t, err)
	channel, err := taskriver.NewWorker[*sql.Tx, channelArgs](task.Task[chan int]{
		Work: func(context.Context, *task.Invocation[chan int]) (chan int, error) {
			return make(chan int), nil
		},
	}, &taskriver.WorkerConfig{Logger: logger})
	require.NoError(t, err)
	longError, err := taskriver.NewWorker[*sql.Tx, longErrorArgs](task.Task[string]{
		Work: func(context.Context, *task.Invocation[string]) (string, error) {
			return "", errors.New(strings.Repeat(`e"`, 20<<20))
		},
	}, &taskriver.WorkerConfig{Logger: logger})
	require.NoError(t, err)
	workers := river.NewWorkers()
	river.AddWorker(workers, huge)
	river.AddWorker(workers, channel)
	river.AddWorker(workers, longError)

	rc := startRiver(t, ctx, driver, river.Config{
		Logger:  logger,
		Workers: workers,
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
	})

	check := func(t *testing.T, final *taskriver.Run[string], status task.Status, want string) {
		t.Helper()
		assert.Equal(t, rivertype.JobStateCancelled, final.State, "not retried, not completed")
		assert.Equal(t, status, final.Task.Status, "the record still tells how the run ended")
		assert.Len(t, final.Task.History, 3)
		err := final.Err()
		require.ErrorIs(t, err, task.ErrFailed)
		assert.ErrorContains(t, err, "could not be stored")
		assert.ErrorContains(t, err, want)
	}

	t.Run("result larger than River's output", func(t *testing.T) {
		client, err := taskriver.NewClient[string](rc, &taskriver.ClientConfig{PollInterval: 20 * time.Millisecond})
		require.NoError(t, err)
		id, err := client.Start(ctx, hugeArgs{}, nil)
		require.NoError(t, err)
		final, err := client.Wait(ctx, id)
		require.NoError(t, err)
		check(t, final, task.StatusCompleted, "more than its 32 MiB limit")
		assert.Empty(t, final.Task.Result, "the result is left out")
	})

	t.Run("result JSON cannot hold", func(t *testing.T) {
		client, err := taskriver.NewClient[chan int](rc, &taskriver.ClientConfig{PollInterval: 20 * time.Millisecond})
		require.NoError(t, err)
		id, err := client.Start(ctx, channelArgs{}, nil)
		require.NoError(t, err)
		final, err := client.Wait(ctx, id)
		require.NoError(t, err)
		assert.Nil(t, final.Task.Result, "the result is left out")
		check(t, &taskriver.Run[string]{JobID: final.JobID, State: final.State, Errors: final.Errors,
			Task: task.Snapshot[string]{Status: final.Task.Status, History: final.Task.History}},
			task.StatusCompleted, "unsupported type: chan int")
	})

	t.Run("error message larger than River's output", func(t *testing.T) {
		client, err := taskriver.NewClient[string](rc, &taskriver.ClientConfig{PollInterval: 20 * time.Millisecond})
		require.NoError(t, err)
		id, err := client.Start(ctx, longErrorArgs{}, &river.InsertOpts{MaxAttempts: 1})
		require.NoError(t, err)
		final, err := client.Wait(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, rivertype.JobStateDiscarded, final.State)
		assert.Equal(t, task.StatusFailed, final.Task.Status, "the record is stored, with the message cut")
		require.Error(t, final.Task.Err)
		assert.Less(t, len(final.Task.Err.Error()), 1<<20)
		assert.Contains(t, final.Task.Err.Error(), "more bytes)")
		err = final.Err()
		require.ErrorIs(t, err, task.ErrFailed)
		assert.NotContains(t, err.Error(), "task: failed: task: failed")
		require.Len(t, final.Errors, 1)
		assert.Less(t, len(final.Errors[0].Error), 1<<20, "River got the cut message too")
	})

	assert.Contains(t, logs.String(), "final record with the run's values failed", "the worker logs the lost result")
}
