package taskriver_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
	taskriver "github.com/tasklife/task/river"
)

func TestNewWorker(t *testing.T) {
	t.Parallel()
	work := task.Func(func(context.Context) (string, error) { return "", nil })

	t.Run("invalid task rejected", func(t *testing.T) {
		_, err := taskriver.NewWorker[pgx.Tx, doubleArgs](task.Task[string]{}, nil)
		assert.ErrorIs(t, err, task.ErrInvalid)
		assert.ErrorContains(t, err, "Work")
	})

	t.Run("negative margin rejected", func(t *testing.T) {
		_, err := taskriver.NewWorker[pgx.Tx, doubleArgs](task.Task[string]{Work: work},
			&taskriver.WorkerConfig{TimeoutMargin: -time.Second})
		assert.ErrorContains(t, err, "TimeoutMargin -1s")
	})

	t.Run("job timeout adds margin", func(t *testing.T) {
		w, err := taskriver.NewWorker[pgx.Tx, doubleArgs](
			task.Task[string]{Work: work, Timeout: 10 * time.Second, StopTimeout: 2 * time.Second},
			&taskriver.WorkerConfig{TimeoutMargin: 3 * time.Second})
		require.NoError(t, err)
		assert.Equal(t, 15*time.Second, w.Timeout(nil))
	})

	t.Run("job timeout default margin", func(t *testing.T) {
		w, err := taskriver.NewWorker[pgx.Tx, doubleArgs](
			task.Task[string]{Work: work, Timeout: 10 * time.Second, StopTimeout: 2 * time.Second}, nil)
		require.NoError(t, err)
		assert.Equal(t, 12*time.Second+taskriver.DefaultTimeoutMargin, w.Timeout(nil))
	})

	t.Run("unbounded task has no timeout", func(t *testing.T) {
		for _, tk := range []task.Task[string]{
			{Work: work},
			{Work: work, Timeout: time.Second},
			{Work: work, StopTimeout: time.Second},
		} {
			w, err := taskriver.NewWorker[pgx.Tx, doubleArgs](tk, nil)
			require.NoError(t, err)
			assert.Equal(t, time.Duration(-1), w.Timeout(nil), "Timeout %v, StopTimeout %v", tk.Timeout, tk.StopTimeout)
		}
	})
}

func TestNewClient(t *testing.T) {
	t.Parallel()

	t.Run("nil river client rejected", func(t *testing.T) {
		_, err := taskriver.NewClient[string, pgx.Tx](nil, nil)
		assert.ErrorContains(t, err, "missing River client")
	})

	t.Run("nil job args rejected", func(t *testing.T) {
		rc, err := river.NewClient(riverpgxv5.New(nil), &river.Config{})
		require.NoError(t, err)
		client, err := taskriver.NewClient[string](rc, nil)
		require.NoError(t, err)

		_, err = client.Start(context.Background(), nil, nil)
		assert.ErrorContains(t, err, "missing job args")
		_, err = client.StartTx(context.Background(), nil, nil, nil)
		assert.ErrorContains(t, err, "missing job args")

		_, err = client.Start(context.Background(), (*doubleArgs)(nil), nil)
		assert.ErrorContains(t, err, "missing job args: got a nil *taskriver_test.doubleArgs")
		_, err = client.StartTx(context.Background(), nil, (*doubleArgs)(nil), nil)
		assert.ErrorContains(t, err, "missing job args: got a nil *taskriver_test.doubleArgs")
	})

	t.Run("negative poll interval rejected", func(t *testing.T) {
		rc, err := river.NewClient(riverpgxv5.New(nil), &river.Config{})
		require.NoError(t, err)
		_, err = taskriver.NewClient[string](rc, &taskriver.ClientConfig{PollInterval: -time.Millisecond})
		assert.ErrorContains(t, err, "PollInterval -1ms")
	})
}

func TestRun_Err(t *testing.T) {
	t.Parallel()
	cause := errors.New("disk full")
	for _, tc := range []struct {
		name   string
		state  rivertype.JobState
		status task.Status
		code   task.ExitCode
		want   error // nil: Err returns nil
	}{
		{"completed job no error", rivertype.JobStateCompleted, task.StatusCompleted, task.ExitCompleted, nil},
		{"running job no error", rivertype.JobStateRunning, task.StatusStarted, task.ExitUnknown, nil},
		{"retryable job no error", rivertype.JobStateRetryable, task.StatusFailed, task.ExitFailed, nil},
		{"discarded job failed", rivertype.JobStateDiscarded, task.StatusFailed, task.ExitFailed, task.ErrFailed},
		{"abandoned run", rivertype.JobStateCancelled, task.StatusAbandoned, task.ExitFailed, task.ErrAbandoned},
		{"remotely cancelled run", rivertype.JobStateCancelled, task.StatusStopped, task.ExitCanceled, task.ErrCanceled},
		{"timed out run", rivertype.JobStateCancelled, task.StatusStopped, task.ExitTimedOut, task.ErrTimedOut},
		{"cancel function failed", rivertype.JobStateCancelled, task.StatusUnknown, task.ExitCancelFailed, task.ErrStopFailed},
		{"stop timed out", rivertype.JobStateCancelled, task.StatusUnknown, task.ExitCancelTimedOut, task.ErrStopTimedOut},
		{"cancelled before start", rivertype.JobStateCancelled, 0, task.ExitUnknown, task.ErrCanceled},
		{"discarded before start", rivertype.JobStateDiscarded, 0, task.ExitUnknown, task.ErrFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := &taskriver.Run[string]{JobID: 7, State: tc.state}
			run.Task.Status, run.Task.ExitCode = tc.status, tc.code
			if tc.status != 0 && tc.status != task.StatusCompleted {
				run.Task.Err = cause
			}

			err := run.Err()
			if tc.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tc.want)
			assert.ErrorContains(t, err, "job 7")
			if tc.status != 0 {
				assert.ErrorContains(t, err, "disk full")
			}
		})
	}
}

func TestRun_ErrNamesOutcomeOnce(t *testing.T) {
	t.Parallel()
	failed := task.Snapshot[string]{Status: task.StatusFailed, ExitCode: task.ExitFailed,
		Err: errors.New("task: failed: disk full")}
	data, err := json.Marshal(failed)
	require.NoError(t, err)
	run := &taskriver.Run[string]{JobID: 7, State: rivertype.JobStateDiscarded}
	require.NoError(t, json.Unmarshal(data, &run.Task))

	err = run.Err()
	assert.ErrorIs(t, err, task.ErrFailed)
	assert.EqualError(t, err, "job 7 discarded: task: failed: disk full")
}

func TestRun_ErrOfUnstoredResult(t *testing.T) {
	t.Parallel()
	run := &taskriver.Run[string]{JobID: 7, State: rivertype.JobStateCancelled,
		Errors: []rivertype.AttemptError{{Attempt: 1, Error: "JobCancelError: result could not be stored"}}}
	run.Task.Status, run.Task.ExitCode = task.StatusCompleted, task.ExitCompleted

	err := run.Err()
	assert.ErrorIs(t, err, task.ErrFailed)
	assert.ErrorContains(t, err, "job 7 cancelled")
	assert.ErrorContains(t, err, "result could not be stored")
}

func TestRun_ErrWithoutRecordNamesOutcomeOnce(t *testing.T) {
	t.Parallel()
	run := &taskriver.Run[string]{JobID: 7, State: rivertype.JobStateDiscarded,
		Errors: []rivertype.AttemptError{{Attempt: 1, Error: "task: failed: disk full"}}}

	err := run.Err()
	assert.ErrorIs(t, err, task.ErrFailed)
	assert.EqualError(t, err, "job 7 discarded: task: failed: disk full")
}

func TestMigrate(t *testing.T) {
	t.Parallel()

	t.Run("nil driver rejected", func(t *testing.T) {
		err := taskriver.Migrate[pgx.Tx](context.Background(), nil)
		assert.ErrorContains(t, err, "missing River driver")
	})
}

func TestOpenSQLite(t *testing.T) {
	t.Parallel()

	t.Run("empty path rejected", func(t *testing.T) {
		_, err := taskriver.OpenSQLite("")
		assert.ErrorContains(t, err, "missing SQLite path")
	})
}

func TestInvocationID(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "42-3", taskriver.InvocationID(42, 3))
}

func TestArgsOf(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 10*time.Second)
	echo := task.Task[int]{Work: func(ctx context.Context, inv *task.Invocation[int]) (int, error) {
		return taskriver.ArgsOf[doubleArgs](inv).N, nil
	}}

	t.Run("state of args type", func(t *testing.T) {
		got, err := echo.Start(ctx, task.WithState(doubleArgs{N: 5})).Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, 5, got)
	})

	t.Run("other state gives zero", func(t *testing.T) {
		got, err := echo.Start(ctx, task.WithState("not args")).Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, 0, got)
	})
}
