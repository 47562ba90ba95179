package taskriver_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
	taskriver "github.com/tasklife/task/river"
)

type strayArgs struct{}

func (strayArgs) Kind() string { return "stray_work" }

// TestWorker_WaitWorksUntilStrayReturns runs a work that ignores its
// context past its stop timeout, so its attempt returns to River while it
// still runs. WaitWorks must wait for the work and for the write of its
// return. It runs on an in-process SQLite setup.
func TestWorker_WaitWorksUntilStrayReturns(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)

	_, driver := openSQLite(t, ctx)

	begun, release := make(chan struct{}), make(chan struct{})
	worker, err := taskriver.NewWorker[*sql.Tx, strayArgs](task.Task[string]{
		Work: func(context.Context, *task.Invocation[string]) (string, error) {
			close(begun)
			<-release // ignores its context
			return "returned at last", nil
		},
		StopTimeout: 50 * time.Millisecond,
	}, nil)
	require.NoError(t, err)
	require.NoError(t, worker.WaitWorks(ctx), "nothing to wait for yet")

	workers := river.NewWorkers()
	river.AddWorker(workers, worker)
	rc := startRiver(t, ctx, driver, river.Config{
		Workers: workers,
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 1}},
	})
	client, err := taskriver.NewClient[string](rc, &taskriver.ClientConfig{PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)

	id, err := client.Start(ctx, strayArgs{}, nil)
	require.NoError(t, err)
	<-begun
	_, err = client.Cancel(ctx, id)
	require.NoError(t, err)
	final, err := client.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, task.StatusUnknown, final.Task.Status)
	require.True(t, final.Task.WorkRunning)
	require.NoError(t, rc.Stop(ctx))

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = worker.WaitWorks(short)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the work still runs")
	assert.ErrorContains(t, err, "works and late writes still pending: 1")

	close(release)
	require.NoError(t, worker.WaitWorks(ctx))
	run, err := client.Get(ctx, id)
	require.NoError(t, err, "the database is still open")
	assert.False(t, run.Task.WorkRunning, "the row says the work returned")
	assert.Equal(t, rivertype.JobStateCancelled, run.State)
	require.Len(t, run.Task.Late, 1)
	assert.Equal(t, "returned at last", run.Task.Late[0].Value)
}
