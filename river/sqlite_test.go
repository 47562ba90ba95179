package taskriver_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
	taskriver "github.com/tasklife/task/river"
)

// TestSQLite runs the worker and the handle in this process, on one River
// client over a SQLite file, as the embedded default does.
func TestSQLite(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	db, driver := openSQLite(t, ctx)

	var mode string
	require.NoError(t, db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
	assert.Equal(t, "wal", mode)

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	workers, err := testWorkers[*sql.Tx](logger)
	require.NoError(t, err)
	rc := startRiver(t, ctx, driver, river.Config{
		ID:      "sqlite-worker",
		Logger:  logger,
		Workers: workers,
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
	})
	client, err := taskriver.NewClient[string](rc, &taskriver.ClientConfig{PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)

	t.Run("run completes", func(t *testing.T) {
		id, err := client.Start(ctx, doubleArgs{N: 4}, nil)
		require.NoError(t, err)

		final, err := client.Wait(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, rivertype.JobStateCompleted, final.State)
		assert.Equal(t, task.StatusCompleted, final.Task.Status)
		assert.Equal(t, "8", final.Task.Result)
		assert.Equal(t, "sqlite-worker", final.Worker)
	})

	t.Run("insert in caller's transaction", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		id, err := client.StartTx(ctx, tx, doubleArgs{N: 5}, nil)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())

		final, err := client.Wait(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, "10", final.Task.Result)
	})

	t.Run("cancel stops run", func(t *testing.T) {
		work := t.TempDir()
		id, err := client.Start(ctx, sleepArgs{Dir: work, Seconds: 60}, nil)
		require.NoError(t, err)

		ticker := time.NewTicker(10 * time.Millisecond)
		defer ticker.Stop()
		for {
			run, err := client.Get(ctx, id)
			require.NoError(t, err)
			if run.Task.Progress.Done == 1 {
				assert.Equal(t, task.StatusStarted, run.Task.Status)
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("run never reported progress; last %+v", run)
			case <-ticker.C:
			}
		}

		_, err = client.Cancel(ctx, id)
		require.NoError(t, err)
		final, err := client.Wait(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, rivertype.JobStateCancelled, final.State)
		assert.Equal(t, task.StatusStopped, final.Task.Status)
		assert.Equal(t, task.ExitCanceled, final.Task.ExitCode)
		assert.FileExists(t, filepath.Join(work, "cancelled"))
	})
}

// TestWorkerConfig_Options checks that the caller's options reach every
// run, after the worker's own, on an in-process SQLite setup.
func TestWorkerConfig_Options(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)

	_, driver := openSQLite(t, ctx)

	completed := make(chan string, 1)
	worker, err := taskriver.NewWorker[*sql.Tx, doubleArgs](doubleTask, &taskriver.WorkerConfig{
		Options: []task.Option{task.WithCallbacks(task.Callbacks[string]{
			Completed: func(inv *task.Invocation[string], result string) {
				completed <- inv.ID() + " " + result
			},
		})},
	})
	require.NoError(t, err)
	workers := river.NewWorkers()
	river.AddWorker(workers, worker)
	rc := startRiver(t, ctx, driver, river.Config{
		Workers: workers,
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
	})
	client, err := taskriver.NewClient[string](rc, nil)
	require.NoError(t, err)

	id, err := client.Start(ctx, doubleArgs{N: 3}, nil)
	require.NoError(t, err)
	select {
	case got := <-completed:
		assert.Equal(t, taskriver.InvocationID(id, 1)+" 6", got)
	case <-ctx.Done():
		t.Fatal("the caller's Completed callback never fired")
	}
}

// openSQLite opens a SQLite file with River's tables in t's temporary
// folder. The database closes when the test ends.
func openSQLite(t *testing.T, ctx context.Context) (*sql.DB, riverdriver.Driver[*sql.Tx]) {
	t.Helper()
	db, err := taskriver.OpenSQLite(filepath.Join(t.TempDir(), "river.sqlite"))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, db.Close()) })
	driver := riversqlite.New(db)
	require.NoError(t, taskriver.Migrate(ctx, driver))
	return db, driver
}

// startRiver starts a River client on driver with config, which fetches
// jobs often so that tests run fast, and logs warnings to standard error
// unless config has a logger. It stops when the test ends, unless the test
// stopped it first.
func startRiver(t *testing.T, ctx context.Context, driver riverdriver.Driver[*sql.Tx], config river.Config) *river.Client[*sql.Tx] {
	t.Helper()
	if config.Logger == nil {
		config.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	config.FetchCooldown = 10 * time.Millisecond
	config.FetchPollInterval = 50 * time.Millisecond
	rc, err := river.NewClient(driver, &config)
	require.NoError(t, err)
	require.NoError(t, rc.Start(ctx))
	t.Cleanup(func() { assert.NoError(t, rc.Stop(testContext(t, 20*time.Second))) })
	return rc
}
