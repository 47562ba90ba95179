package taskriver_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
	taskriver "github.com/tasklife/task/river"
)

// These tests run the worker in other processes (copies of the test binary)
// and drive and read the runs from this one, through a PostgreSQL database.

// awaitRun reads the run of job id until match accepts it, and fails the
// test if ctx ends first. It returns the accepted run and the statuses seen
// on the way, without repeats.
func awaitRun(t *testing.T, ctx context.Context, client *taskriver.Client[pgx.Tx, string], id int64,
	match func(*taskriver.Run[string]) bool,
) (*taskriver.Run[string], []task.Status) {
	t.Helper()
	var seen []task.Status
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	for {
		run, err := client.Get(ctx, id)
		require.NoError(t, err)
		if len(seen) == 0 || seen[len(seen)-1] != run.Task.Status {
			seen = append(seen, run.Task.Status)
		}
		if match(run) {
			return run, seen
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %d: no match before the deadline; last run %+v, statuses seen %v", id, run, seen)
		case <-ticker.C:
		}
	}
}

func historyStatuses(s task.Snapshot[string]) []task.Status {
	var statuses []task.Status
	for _, tr := range s.History {
		statuses = append(statuses, tr.To)
	}
	return statuses
}

func TestWorker_RemoteCancel(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	startWorker(t, dsn, "worker-a")
	client, _ := testClient(t, dsn)
	ctx := testContext(t, 60*time.Second)
	dir := t.TempDir()

	id, err := client.Start(ctx, sleepArgs{Dir: dir, Seconds: 60}, nil)
	require.NoError(t, err)

	running, seen := awaitRun(t, ctx, client, id, func(r *taskriver.Run[string]) bool {
		return r.Task.Progress.Done == 1
	})
	assert.Equal(t, task.StatusStarted, running.Task.Status, "statuses seen %v", seen)
	assert.Equal(t, rivertype.JobStateRunning, running.State)
	assert.Equal(t, "worker-a", running.Worker)
	assert.Equal(t, taskriver.InvocationID(id, 1), running.Task.ID)

	cancelled := time.Now()
	_, err = client.Cancel(ctx, id)
	require.NoError(t, err)
	stopping, _ := awaitRun(t, ctx, client, id, func(r *taskriver.Run[string]) bool {
		return r.Task.Status == task.StatusStopping || r.Task.Status == task.StatusStopped
	})
	assert.Less(t, time.Since(cancelled), time.Second, "cancel reached the worker late; status %s", stopping.Task.Status)

	final, err := client.Wait(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, rivertype.JobStateCancelled, final.State)
	assert.Equal(t, 1, final.Attempt)
	assert.Equal(t, task.StatusStopped, final.Task.Status)
	assert.Equal(t, task.ExitCanceled, final.Task.ExitCode)
	assert.ErrorIs(t, final.Err(), task.ErrCanceled)
	assert.ErrorContains(t, final.Task.Cause, "job cancelled remotely")
	assert.Equal(t,
		[]task.Status{task.StatusStarting, task.StatusStarted, task.StatusStopping, task.StatusStopped},
		historyStatuses(final.Task))

	marker, err := os.ReadFile(filepath.Join(dir, "cancelled"))
	require.NoError(t, err, "the cancel function did not run")
	assert.Equal(t, taskriver.InvocationID(id, 1), string(marker))

	// The work returns once the cancel function's SIGTERM ends its
	// subprocess. That return is not the run's outcome, but the row
	// records it.
	returned, _ := awaitRun(t, ctx, client, id, func(r *taskriver.Run[string]) bool {
		return !r.Task.WorkRunning && len(r.Task.Late) > 0
	})
	assert.ErrorContains(t, returned.Task.Late[0].Err, "signal: terminated")
	assert.Equal(t, task.StatusStopped, returned.Task.Status)
	assert.Equal(t, rivertype.JobStateCancelled, returned.State)
}

func TestWorker_IgnoredContextEndsUnknown(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	startWorker(t, dsn, "worker-a")
	client, pool := testClient(t, dsn)
	ctx := testContext(t, 60*time.Second)

	id, err := client.Start(ctx, ignoreArgs{Seconds: 3}, nil)
	require.NoError(t, err)

	final, err := client.Wait(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, rivertype.JobStateCancelled, final.State)
	assert.Equal(t, 1, final.Attempt)
	assert.Equal(t, task.StatusUnknown, final.Task.Status)
	assert.Equal(t, task.ExitCancelTimedOut, final.Task.ExitCode)
	assert.True(t, final.Task.WorkRunning, "the row must say the work may still run")
	assert.ErrorIs(t, final.Err(), task.ErrStopTimedOut)
	assert.Equal(t,
		[]task.Status{task.StatusStarting, task.StatusStarted, task.StatusStopping, task.StatusUnknown},
		historyStatuses(final.Task))

	// A job of another kind, in a queue no worker here serves, whose
	// output is not JSON text: the package doc's query must skip it.
	_, err = pool.Exec(ctx, `INSERT INTO river_job (args, kind, max_attempts, metadata, priority, queue, state)
		VALUES ('{}', 'other_kind', 1, '{"output": "done"}', 1, 'other_queue', 'available')`)
	require.NoError(t, err)
	var found int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT id FROM river_job
		WHERE CASE WHEN kind = 'test_ignore' THEN (metadata->>'output')::jsonb END
		      @> '{"run": {"status": "UNKNOWN", "exit_code": "cancelTimedOut"}}'`).Scan(&found))
	assert.Equal(t, id, found, "SQL finds the run by its status")

	// When the work finally returns, the row records it, and River still
	// does not retry the job.
	returned, _ := awaitRun(t, ctx, client, id, func(r *taskriver.Run[string]) bool {
		return !r.Task.WorkRunning
	})
	require.Len(t, returned.Task.Late, 1)
	assert.Equal(t, "finished late", returned.Task.Late[0].Value)
	assert.Equal(t, task.StatusUnknown, returned.Task.Status)
	assert.Equal(t, rivertype.JobStateCancelled, returned.State)
	assert.Equal(t, 1, returned.Attempt)
}

func TestWorker_FailedIsRetried(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	startWorker(t, dsn, "worker-a")
	client, _ := testClient(t, dsn)
	ctx := testContext(t, 60*time.Second)

	id, err := client.Start(ctx, flakyArgs{Dir: t.TempDir()}, nil)
	require.NoError(t, err)

	final, err := client.Wait(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, rivertype.JobStateCompleted, final.State)
	assert.Equal(t, 2, final.Attempt)
	assert.Equal(t, task.StatusCompleted, final.Task.Status)
	assert.Equal(t, "second attempt completed", final.Task.Result)
	assert.NoError(t, final.Err())

	require.Len(t, final.Earlier, 1)
	assert.Equal(t, 1, final.Earlier[0].Number)
	assert.Equal(t, task.StatusFailed, final.Earlier[0].Task.Status)
	assert.Equal(t, task.ExitFailed, final.Earlier[0].Task.ExitCode)
	require.Len(t, final.Errors, 1)
	assert.Contains(t, final.Errors[0].Error, "first attempt fails")
}

func TestWorker_AbandonedIsNotRetried(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	startWorker(t, dsn, "worker-a")
	client, _ := testClient(t, dsn)
	ctx := testContext(t, 60*time.Second)

	id, err := client.Start(ctx, permanentArgs{}, &river.InsertOpts{MaxAttempts: 5})
	require.NoError(t, err)

	final, err := client.Wait(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, rivertype.JobStateCancelled, final.State)
	assert.Equal(t, 1, final.Attempt)
	assert.Equal(t, task.StatusAbandoned, final.Task.Status)
	assert.Equal(t, task.ExitFailed, final.Task.ExitCode)
	assert.ErrorIs(t, final.Err(), task.ErrAbandoned)
	assert.ErrorContains(t, final.Err(), "malformed input")
	assert.Empty(t, final.Earlier)
}

func TestWorker_TimeoutIsNotRetried(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	startWorker(t, dsn, "worker-a")
	client, _ := testClient(t, dsn)
	ctx := testContext(t, 60*time.Second)

	id, err := client.Start(ctx, timeoutArgs{}, &river.InsertOpts{MaxAttempts: 5})
	require.NoError(t, err)

	final, err := client.Wait(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, rivertype.JobStateCancelled, final.State)
	assert.Equal(t, 1, final.Attempt)
	assert.Equal(t, task.StatusStopped, final.Task.Status)
	assert.Equal(t, task.ExitTimedOut, final.Task.ExitCode)
	assert.ErrorIs(t, final.Err(), task.ErrTimedOut)
}

// A worker killed mid-run leaves its job running in the database. Once the
// job has run past its River timeout and RescueStuckJobsAfter, the rescuer
// of the surviving worker (leader once the dead one's term expires, about
// 15 s in River v0.51.2) makes the job retryable, and that worker runs it.
func TestWorker_KilledWorkerIsRescued(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	first := startWorker(t, dsn, "worker-a")
	client, _ := testClient(t, dsn)
	ctx := testContext(t, 120*time.Second)
	release := filepath.Join(t.TempDir(), "release")

	id, err := client.Start(ctx, rescueArgs{Release: release}, nil)
	require.NoError(t, err)
	running, _ := awaitRun(t, ctx, client, id, func(r *taskriver.Run[string]) bool {
		return r.Task.Status == task.StatusStarted
	})
	require.Equal(t, "worker-a", running.Worker)

	startWorker(t, dsn, "worker-b")
	first.kill(t)
	require.NoError(t, os.WriteFile(release, nil, 0o644))

	final, err := client.Wait(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, rivertype.JobStateCompleted, final.State)
	assert.Equal(t, 2, final.Attempt)
	assert.Equal(t, "worker-b", final.Worker)
	assert.Equal(t, task.StatusCompleted, final.Task.Status)
	assert.Equal(t, "released", final.Task.Result)

	require.Len(t, final.Earlier, 1)
	assert.Equal(t, 1, final.Earlier[0].Number)
	assert.Equal(t, "worker-a", final.Earlier[0].Worker)
	assert.Equal(t, task.StatusStarted, final.Earlier[0].Task.Status, "the killed attempt's last status")
	require.Len(t, final.Errors, 1)
	assert.Contains(t, final.Errors[0].Error, "Stuck job rescued")
}

func TestClient_StartTx(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	startWorker(t, dsn, "worker-a")
	client, pool := testClient(t, dsn)
	ctx := testContext(t, 60*time.Second)

	t.Run("rolled back insert never runs", func(t *testing.T) {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		id, err := client.StartTx(ctx, tx, doubleArgs{N: 1}, nil)
		require.NoError(t, err)
		require.NoError(t, tx.Rollback(ctx))

		_, err = client.Get(ctx, id)
		assert.ErrorIs(t, err, river.ErrNotFound)
	})

	t.Run("committed insert runs", func(t *testing.T) {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		id, err := client.StartTx(ctx, tx, doubleArgs{N: 21}, nil)
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))

		final, err := client.Wait(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, rivertype.JobStateCompleted, final.State)
		assert.Equal(t, "42", final.Task.Result)
		assert.Equal(t,
			[]task.Status{task.StatusStarting, task.StatusStarted, task.StatusCompleted},
			historyStatuses(final.Task))
	})
}

func TestClient_UnknownJob(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	client, _ := testClient(t, dsn)
	ctx := testContext(t, 30*time.Second)
	const id = 987654

	_, err := client.Get(ctx, id)
	assert.ErrorIs(t, err, river.ErrNotFound)
	assert.ErrorContains(t, err, "987654")

	_, err = client.Cancel(ctx, id)
	assert.ErrorIs(t, err, river.ErrNotFound)
	assert.ErrorContains(t, err, "987654")

	_, err = client.Wait(ctx, id)
	assert.ErrorIs(t, err, river.ErrNotFound)
	assert.ErrorContains(t, err, "987654")
}

func TestClient_CancelBeforeStart(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	client, _ := testClient(t, dsn)
	ctx := testContext(t, 30*time.Second)

	// No worker runs, so the job is still in the queue when cancelled.
	id, err := client.Start(ctx, doubleArgs{N: 1}, nil)
	require.NoError(t, err)
	run, err := client.Cancel(ctx, id)
	require.NoError(t, err)

	assert.True(t, run.Finished())
	assert.Equal(t, rivertype.JobStateCancelled, run.State)
	assert.Equal(t, task.Status(0), run.Task.Status)
	assert.ErrorIs(t, run.Err(), task.ErrCanceled)
}

func TestClient_WaitEndsWithContext(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	client, _ := testClient(t, dsn)
	ctx := testContext(t, 30*time.Second)

	// No worker runs, so the run never finishes.
	id, err := client.Start(ctx, doubleArgs{N: 1}, nil)
	require.NoError(t, err)
	waitCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()

	run, err := client.Wait(waitCtx, id)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotNil(t, run)
	assert.Equal(t, rivertype.JobStateAvailable, run.State)
	assert.ErrorContains(t, err, strconv.FormatInt(id, 10))
}

// A worker whose River client stops (here through StopAndCancel) cancels
// its runs, and River puts their jobs back in the queue without counting
// the attempt, for another worker to run.
func TestWorker_ClientStopRequeuesRun(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	first := startWorker(t, dsn, "worker-a")
	client, _ := testClient(t, dsn)
	ctx := testContext(t, 60*time.Second)
	release := filepath.Join(t.TempDir(), "release")

	id, err := client.Start(ctx, rescueArgs{Release: release}, nil)
	require.NoError(t, err)
	awaitRun(t, ctx, client, id, func(r *taskriver.Run[string]) bool {
		return r.Task.Status == task.StatusStarted
	})

	first.stop(t)
	stopped, err := client.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, rivertype.JobStateAvailable, stopped.State)
	assert.Equal(t, 0, stopped.Attempt)
	assert.Equal(t, task.StatusStopped, stopped.Task.Status)
	assert.Equal(t, task.ExitCanceled, stopped.Task.ExitCode)

	require.NoError(t, os.WriteFile(release, nil, 0o644))
	startWorker(t, dsn, "worker-b")
	final, err := client.Wait(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, rivertype.JobStateCompleted, final.State)
	assert.Equal(t, 1, final.Attempt)
	assert.Equal(t, "worker-b", final.Worker)
	require.Len(t, final.Earlier, 1)
	assert.Equal(t, "worker-a", final.Earlier[0].Worker)
	assert.Equal(t, task.StatusStopped, final.Earlier[0].Task.Status)
}
