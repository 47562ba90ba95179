package taskriver_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/riverqueue/river"

	"github.com/tasklife/task"
	taskriver "github.com/tasklife/task/river"
)

// The tasks below are what the worker processes run. Each has its own job
// kind and behaves as the test of that kind needs.

// sleepArgs runs "sleep Seconds" as a subprocess. The work writes the
// subprocess's PID to Dir/pid and reports progress 1 of 2 once it runs.
// The cancel function writes Dir/cancelled and sends the subprocess
// SIGTERM.
type sleepArgs struct {
	Dir     string `json:"dir"`
	Seconds int    `json:"seconds"`
}

func (sleepArgs) Kind() string { return "test_sleep" }

var sleepTask = task.Task[string]{
	Work: func(ctx context.Context, inv *task.Invocation[string]) (string, error) {
		args := taskriver.ArgsOf[sleepArgs](inv)
		cmd := exec.Command("sleep", strconv.Itoa(args.Seconds))
		if err := cmd.Start(); err != nil {
			return "", err
		}
		if err := writeFile(filepath.Join(args.Dir, "pid"), strconv.Itoa(cmd.Process.Pid)); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return "", err
		}
		inv.ReportProgress(1, 2)
		if err := cmd.Wait(); err != nil {
			return "", fmt.Errorf("sleep: %w", err)
		}
		return "slept", nil
	},
	Cancel: func(ctx context.Context, inv *task.Invocation[string]) error {
		args := taskriver.ArgsOf[sleepArgs](inv)
		data, err := os.ReadFile(filepath.Join(args.Dir, "pid"))
		if err != nil {
			return err
		}
		pid, err := strconv.Atoi(string(data))
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(args.Dir, "cancelled"), inv.ID()); err != nil {
			return err
		}
		return syscall.Kill(pid, syscall.SIGTERM)
	},
	Timeout:     30 * time.Second,
	StopTimeout: 5 * time.Second,
}

// ignoreArgs runs a subprocess that sleeps for Seconds whatever happens to
// the run: its work ignores its context, and the task has no cancel
// function.
type ignoreArgs struct {
	Seconds int `json:"seconds"`
}

func (ignoreArgs) Kind() string { return "test_ignore" }

var ignoreTask = task.Task[string]{
	Work: func(ctx context.Context, inv *task.Invocation[string]) (string, error) {
		args := taskriver.ArgsOf[ignoreArgs](inv)
		if err := exec.Command("sleep", strconv.Itoa(args.Seconds)).Run(); err != nil {
			return "", err
		}
		return "finished late", nil
	},
	Timeout:     300 * time.Millisecond,
	StopTimeout: 300 * time.Millisecond,
}

// flakyArgs fails its first attempt, which creates Dir/attempted, and
// completes every later one.
type flakyArgs struct {
	Dir string `json:"dir"`
}

func (flakyArgs) Kind() string { return "test_flaky" }

var flakyTask = task.Task[string]{
	Work: func(ctx context.Context, inv *task.Invocation[string]) (string, error) {
		marker := filepath.Join(taskriver.ArgsOf[flakyArgs](inv).Dir, "attempted")
		if _, err := os.Stat(marker); errors.Is(err, os.ErrNotExist) {
			if err := writeFile(marker, inv.ID()); err != nil {
				return "", err
			}
			return "", errors.New("first attempt fails")
		}
		return "second attempt completed", nil
	},
	Timeout:     10 * time.Second,
	StopTimeout: time.Second,
}

// permanentArgs fails with an error that no retry can fix.
type permanentArgs struct{}

func (permanentArgs) Kind() string { return "test_permanent" }

var permanentTask = task.Task[string]{
	Work: func(ctx context.Context, inv *task.Invocation[string]) (string, error) {
		return "", task.Permanent(errors.New("malformed input"))
	},
	Timeout:     10 * time.Second,
	StopTimeout: time.Second,
}

// rescueArgs waits until the file Release exists, then completes.
type rescueArgs struct {
	Release string `json:"release"`
}

func (rescueArgs) Kind() string { return "test_rescue" }

var rescueTask = task.Task[string]{
	Work: func(ctx context.Context, inv *task.Invocation[string]) (string, error) {
		release := taskriver.ArgsOf[rescueArgs](inv).Release
		ticker := time.NewTicker(20 * time.Millisecond)
		defer ticker.Stop()
		for {
			if _, err := os.Stat(release); err == nil {
				return "released", nil
			}
			select {
			case <-ctx.Done():
				return "", context.Cause(ctx)
			case <-ticker.C:
			}
		}
	},
	Timeout:     rescueTimeout,
	StopTimeout: rescueStopTimeout,
}

// timeoutArgs waits for its context, so its run always times out.
type timeoutArgs struct{}

func (timeoutArgs) Kind() string { return "test_timeout" }

var timeoutTask = task.Task[string]{
	Work: func(ctx context.Context, inv *task.Invocation[string]) (string, error) {
		<-ctx.Done()
		return "", context.Cause(ctx)
	},
	Timeout:     300 * time.Millisecond,
	StopTimeout: time.Second,
}

// doubleArgs completes at once with twice N.
type doubleArgs struct {
	N int `json:"n"`
}

func (doubleArgs) Kind() string { return "test_double" }

var doubleTask = task.Task[string]{
	Work: func(ctx context.Context, inv *task.Invocation[string]) (string, error) {
		return strconv.Itoa(2 * taskriver.ArgsOf[doubleArgs](inv).N), nil
	},
	Timeout:     10 * time.Second,
	StopTimeout: time.Second,
}

// testWorkers returns a bundle with a worker for each test task.
func testWorkers[TTx any](logger *slog.Logger) (*river.Workers, error) {
	workers := river.NewWorkers()
	err := errors.Join(
		addWorker[TTx, sleepArgs](workers, sleepTask, logger, 0),
		addWorker[TTx, ignoreArgs](workers, ignoreTask, logger, 0),
		addWorker[TTx, flakyArgs](workers, flakyTask, logger, 0),
		addWorker[TTx, permanentArgs](workers, permanentTask, logger, 0),
		addWorker[TTx, rescueArgs](workers, rescueTask, logger, rescueMargin),
		addWorker[TTx, timeoutArgs](workers, timeoutTask, logger, 0),
		addWorker[TTx, doubleArgs](workers, doubleTask, logger, 0),
	)
	return workers, err
}

func addWorker[TTx any, A river.JobArgs](workers *river.Workers, t task.Task[string], logger *slog.Logger, margin time.Duration) error {
	w, err := taskriver.NewWorker[TTx, A](t, &taskriver.WorkerConfig{TimeoutMargin: margin, Logger: logger})
	if err != nil {
		return err
	}
	return river.AddWorkerSafely(workers, w)
}

// writeFile writes data to path through a temporary file and a rename, so
// that a reader never sees a partial file.
func writeFile(path, data string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
