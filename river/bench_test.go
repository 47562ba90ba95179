package taskriver_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
	taskriver "github.com/tasklife/task/river"
)

// Throughput settings shared by both workers. FetchCooldown is River's
// minimum, so that the fetch rate limit (by default 100 ms between
// fetches, at most MaxWorkers jobs each) does not cap both at the same
// number.
const (
	benchMaxWorkers    = 100
	benchFetchCooldown = time.Millisecond
)

type plainArgs struct{}

func (plainArgs) Kind() string { return "bench_plain" }

type plainWorker struct {
	river.WorkerDefaults[plainArgs]
}

func (plainWorker) Work(context.Context, *river.Job[plainArgs]) error { return nil }

type runnerArgs struct{}

func (runnerArgs) Kind() string { return "bench_runner" }

var trivialTask = task.Task[string]{
	Work:        func(context.Context, *task.Invocation[string]) (string, error) { return "done", nil },
	Timeout:     10 * time.Second,
	StopTimeout: time.Second,
}

// BenchmarkThroughput measures jobs per second from the start of a River
// client until River has completed b.N queued jobs, for a plain River
// worker and for a Worker running a task with the same trivial work, on
// the same database. Run it with a fixed count, such as -benchtime=20000x,
// so that both workers see queues of the same length.
func BenchmarkThroughput(b *testing.B) {
	b.Run("db=postgres", func(b *testing.B) {
		pool := testPool(b, testDatabase(b))
		driver := riverpgxv5.New(pool)
		truncate := func(ctx context.Context) error {
			_, err := pool.Exec(ctx, "TRUNCATE river_job")
			return err
		}
		benchWorkers(b, driver, truncate)
	})

	b.Run("db=sqlite", func(b *testing.B) {
		db, err := taskriver.OpenSQLite(filepath.Join(b.TempDir(), "bench.sqlite"))
		require.NoError(b, err)
		b.Cleanup(func() { _ = db.Close() })
		driver := riversqlite.New(db)
		require.NoError(b, taskriver.Migrate(testContext(b, 30*time.Second), driver))
		truncate := func(ctx context.Context) error {
			_, err := db.ExecContext(ctx, "DELETE FROM river_job")
			return err
		}
		benchWorkers[*sql.Tx](b, driver, truncate)
	})
}

func benchWorkers[TTx any](b *testing.B, driver riverdriver.Driver[TTx], truncate func(context.Context) error) {
	b.Run("worker=plain", func(b *testing.B) {
		workers := river.NewWorkers()
		river.AddWorker(workers, plainWorker{})
		benchJobs(b, driver, workers, plainArgs{}, truncate)
	})

	b.Run("worker=runner", func(b *testing.B) {
		w, err := taskriver.NewWorker[TTx, runnerArgs](trivialTask, nil)
		require.NoError(b, err)
		workers := river.NewWorkers()
		river.AddWorker(workers, w)
		benchJobs(b, driver, workers, runnerArgs{}, truncate)
	})
}

func benchJobs[TTx any](b *testing.B, driver riverdriver.Driver[TTx], workers *river.Workers,
	args river.JobArgs, truncate func(context.Context) error,
) {
	ctx := testContext(b, 10*time.Minute)
	require.NoError(b, truncate(ctx))

	client, err := river.NewClient(driver, &river.Config{
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Workers:       workers,
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: benchMaxWorkers}},
		FetchCooldown: benchFetchCooldown,
	})
	require.NoError(b, err)

	params := make([]river.InsertManyParams, b.N)
	for i := range params {
		params[i] = river.InsertManyParams{Args: args}
	}
	for start := 0; start < len(params); start += 5000 {
		_, err := client.InsertManyFast(ctx, params[start:min(start+5000, len(params))])
		require.NoError(b, err)
	}

	completed, cancel := client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: b.N + 1,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled},
	})
	defer cancel()

	b.ResetTimer()
	began, cpuBefore := time.Now(), processCPU(b)
	require.NoError(b, client.Start(ctx))
	for i := range b.N {
		select {
		case event := <-completed:
			if event.Kind != river.EventKindJobCompleted {
				b.Fatalf("job %d ended %s: %v", event.Job.ID, event.Kind, event.Job.Errors)
			}
		case <-ctx.Done():
			b.Fatalf("%d of %d jobs completed before the deadline", i, b.N)
		}
	}
	elapsed, cpu := time.Since(began), processCPU(b)-cpuBefore
	b.StopTimer()

	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "client-cpu-µs/job")
	require.NoError(b, client.Stop(ctx))
}

// processCPU returns the user and system CPU time this process has used.
// Unlike jobs/s, the CPU time per job barely moves when other programs
// load the machine, though it leaves out the database server's share.
func processCPU(b *testing.B) time.Duration {
	var usage syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &usage))
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
