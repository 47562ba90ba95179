//go:build unix

// Command shellrun runs shell scripts as tasks on two worker processes
// through River, cancels one run from the client, and prints where every
// run ended and which worker ran it.
//
//	go run ./examples/shellrun                 # SQLite in a temporary folder
//	go run ./examples/shellrun -dsn postgres://user@127.0.0.1:5432/db
//
// The program starts its two workers itself, as copies of its own binary
// with -worker, and stops them at the end. The runs take about ten seconds.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/tasklife/task"
	taskriver "github.com/tasklife/task/river"
)

func main() {
	dsn := flag.String("dsn", "", "PostgreSQL DSN to use; empty means a SQLite file in a new temporary folder")
	sqlitePath := flag.String("sqlite", "", "SQLite file to use instead of a new one")
	workerID := flag.String("worker", "", "run as a worker process with this River client ID (the program starts its own)")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(context.Background(), os.Stdout, *dsn, *sqlitePath, *workerID, logger); err != nil {
		fmt.Fprintln(os.Stderr, "shellrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, dsn, sqlitePath, workerID string, logger *slog.Logger) error {
	if dsn != "" {
		pool, err := taskriver.OpenPostgres(ctx, dsn)
		if err != nil {
			return err
		}
		defer pool.Close()
		return runOn(ctx, out, riverpgxv5.New(pool), []string{"-dsn", dsn}, workerID, logger)
	}

	if sqlitePath == "" {
		dir, err := os.MkdirTemp("", "shellrun-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		sqlitePath = filepath.Join(dir, "river.sqlite")
	}
	db, err := taskriver.OpenSQLite(sqlitePath)
	if err != nil {
		return err
	}
	defer db.Close()
	return runOn(ctx, out, riversqlite.New(db), []string{"-sqlite", sqlitePath}, workerID, logger)
}

// runOn runs the client, or a worker if workerID is set, on driver.
// workerFlags point a worker process at the same database.
func runOn[TTx any](ctx context.Context, out io.Writer, driver riverdriver.Driver[TTx], workerFlags []string,
	workerID string, logger *slog.Logger,
) error {
	if workerID != "" {
		return work(ctx, driver, workerID, logger)
	}
	if err := taskriver.Migrate(ctx, driver); err != nil {
		return err
	}

	for _, id := range []string{"worker-1", "worker-2"} {
		stop, err := startWorker(id, workerFlags)
		if err != nil {
			return err
		}
		defer stop()
	}

	rc, err := river.NewClient(driver, &river.Config{Logger: logger})
	if err != nil {
		return err
	}
	client, err := taskriver.NewClient[string](rc, nil)
	if err != nil {
		return err
	}
	return drive(ctx, out, client)
}

// scripts are the runs the client starts. Every script but "cancelled"
// ends by itself: the client cancels that one once it runs.
var scripts = []struct {
	args        shellArgs
	maxAttempts int
}{
	{shellArgs{"greet", `echo "hello from pid $$"`}, 1},
	{shellArgs{"count", `for i in 1 2 3; do sleep 0.2; done; echo counted to 3`}, 1},
	{shellArgs{"cancelled", `sleep 30`}, 1},
	{shellArgs{"too slow", `sleep 30`}, 1},
	{shellArgs{"ignores SIGTERM", `trap '' TERM; sleep 8; echo finished anyway`}, 1},
	{shellArgs{"broken", `echo "no such table: orders" >&2; exit 3`}, 2},
}

func drive[TTx any](ctx context.Context, out io.Writer, client *taskriver.Client[TTx, string]) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	ids := make([]int64, len(scripts))
	for i, s := range scripts {
		id, err := client.Start(ctx, s.args, &river.InsertOpts{MaxAttempts: s.maxAttempts})
		if err != nil {
			return err
		}
		ids[i] = id
	}

	cancelID := ids[2]
	if err := awaitStatus(ctx, client, cancelID, task.StatusStarted); err != nil {
		return err
	}
	fmt.Fprintf(out, "job %d is STARTED; cancelling it from the client\n", cancelID)
	if _, err := client.Cancel(ctx, cancelID); err != nil {
		return err
	}

	runs := make([]*taskriver.Run[string], len(ids))
	for i, id := range ids {
		run, err := client.Wait(ctx, id)
		if err != nil {
			return err
		}
		runs[i] = run
	}

	// A run that ended UNKNOWN may still be working. Its worker writes the
	// row again when the work returns.
	for i, run := range runs {
		for run.Task.WorkRunning {
			if err := pause(ctx, 100*time.Millisecond); err != nil {
				return err
			}
			var err error
			if run, err = client.Get(ctx, run.JobID); err != nil {
				return err
			}
		}
		runs[i] = run
	}

	printRuns(out, runs)
	return nil
}

func awaitStatus[TTx any](ctx context.Context, client *taskriver.Client[TTx, string], id int64, status task.Status) error {
	for {
		run, err := client.Get(ctx, id)
		if err != nil {
			return err
		}
		if run.Task.Status == status {
			return nil
		}
		if err := pause(ctx, 20*time.Millisecond); err != nil {
			return fmt.Errorf("job %d never reached %s: %w", id, status, err)
		}
	}
}

func pause(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-timer.C:
		return nil
	}
}

func printRuns(w io.Writer, runs []*taskriver.Run[string]) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tNAME\tWORKER\tATTEMPTS\tRIVER\tSTATUS\tEXIT CODE\tRESULT OR ERROR")
	for i, run := range runs {
		outcome := run.Task.Result
		if run.Task.Err != nil {
			outcome = run.Task.Err.Error()
		}
		for _, late := range run.Task.Late {
			if late.Event == task.EventReturn || late.Event == task.EventFail {
				outcome += fmt.Sprintf(" (the work returned later: %s)", lateOutcome(late))
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", run.JobID, scripts[i].args.Name, run.Worker,
			run.Attempt, run.State, run.Task.Status, run.Task.ExitCode, outcome)
	}
	_ = tw.Flush()
}

func lateOutcome(late task.Ignored[string]) string {
	if late.Err != nil {
		return late.Err.Error()
	}
	return fmt.Sprintf("%q", late.Value)
}

// startWorker starts a copy of this program as the worker id, waits until
// its River client has started, and returns a function that stops it.
func startWorker(id string, flags []string) (stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{"-worker", id}, flags...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("worker %s did not start: %q, %v", id, line, err)
	}
	return func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}, nil
}

// work is the main function of a worker process: it works shell jobs until
// its standard input closes.
func work[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], id string, logger *slog.Logger) error {
	worker, err := taskriver.NewWorker[TTx, shellArgs](shellTask, &taskriver.WorkerConfig{Logger: logger})
	if err != nil {
		return err
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, worker)
	rc, err := river.NewClient(driver, &river.Config{
		ID:                id,
		Logger:            logger,
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
		FetchPollInterval: 100 * time.Millisecond,
		RetryPolicy:       retryAfterOneSecond{},
	})
	if err != nil {
		return err
	}
	if err := rc.Start(ctx); err != nil {
		return err
	}
	fmt.Println("ready")

	_, _ = io.Copy(io.Discard, os.Stdin)
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rc.StopAndCancel(stopCtx); err != nil {
		return err
	}
	// A script that ignored SIGTERM may outlive its run: wait until its
	// return is on the job row before the process exits.
	return worker.WaitWorks(stopCtx)
}

// retryAfterOneSecond keeps the example short: River's default policy
// waits longer between attempts.
type retryAfterOneSecond struct{}

func (retryAfterOneSecond) NextRetry(*rivertype.JobRow) time.Time {
	return time.Now().Add(time.Second)
}
