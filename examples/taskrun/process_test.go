//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
)

// testBound bounds every wait of these tests. No run should come near
// it: a test that reaches it has found a run that hangs.
const testBound = 20 * time.Second

// ignoreTERMScript ignores SIGTERM, starts a sleep that inherits that, and
// prints the sleep's process ID once both ignore it.
const ignoreTERMScript = "trap '' TERM; sleep 10 & echo $!; wait"

type runResult struct {
	out outcome
	err error
}

// startRun runs c under tk in a new goroutine with a parent context that
// cancel ends. Wait for the result with awaitRun.
func startRun(t *testing.T, tk task.Task[*processExit], c *command,
	cb ...task.Callbacks[*processExit]) (cancel context.CancelCauseFunc, result <-chan runResult) {
	t.Helper()
	ctx, cancel := context.WithCancelCause(t.Context())
	t.Cleanup(func() { cancel(nil) })
	var callbacks task.Callbacks[*processExit]
	if len(cb) > 0 {
		callbacks = cb[0]
	}
	ch := make(chan runResult, 1)
	go func() {
		out, err := runCommand(ctx, tk, c, callbacks)
		ch <- runResult{out, err}
	}()
	return cancel, ch
}

func awaitRun(t *testing.T, result <-chan runResult) outcome {
	t.Helper()
	select {
	case r := <-result:
		require.NoError(t, r.err)
		return r.out
	case <-time.After(testBound):
		require.FailNow(t, "run still going", "after %v", testBound)
		return outcome{}
	}
}

// requireGone checks that process pid and its process group are gone:
// exited and reaped, not even a zombie.
func requireGone(t *testing.T, pid int) {
	t.Helper()
	require.NotZero(t, pid, "process ID")
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "process %d", pid)
	assert.ErrorIs(t, syscall.Kill(-pid, 0), syscall.ESRCH, "process group %d", pid)
}

// readyPipe returns a pipe for a command's standard output, from which
// the test reads the lines that tell it the command is ready.
func readyPipe(t *testing.T) (*bufio.Reader, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() {
		r.Close()
		w.Close()
	})
	require.NoError(t, r.SetReadDeadline(time.Now().Add(testBound)))
	return bufio.NewReader(r), w
}

// readPID reads a line holding a process ID.
func readPID(t *testing.T, r *bufio.Reader) int {
	t.Helper()
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err)
	return pid
}

func statuses(history []task.Transition) []task.Status {
	var out []task.Status
	for _, tr := range history {
		out = append(out, tr.To)
	}
	return out
}

func lateEvents(late []task.Ignored[*processExit]) []string {
	var out []string
	for _, ig := range late {
		out = append(out, ig.Event.String()+" in "+ig.Status.String())
	}
	return out
}

func TestRunCommand(t *testing.T) {
	t.Run("zero exit status completes run", func(t *testing.T) {
		dir := t.TempDir()
		stdout, err := os.Create(filepath.Join(dir, "stdout"))
		require.NoError(t, err)
		defer stdout.Close()
		stderr, err := os.Create(filepath.Join(dir, "stderr"))
		require.NoError(t, err)
		defer stderr.Close()

		c := newCommand([]string{"sh", "-c", "echo out; echo err >&2"}, stdout, stderr, time.Second)
		_, result := startRun(t, processTask(testBound, testBound), c)
		out := awaitRun(t, result)

		snap := out.Snapshot
		assert.Equal(t, task.StatusCompleted, snap.Status)
		assert.Equal(t, task.ExitCompleted, snap.ExitCode)
		assert.Equal(t, &processExit{PID: out.PID}, snap.Result)
		assert.Equal(t, []task.Status{task.StatusStarting, task.StatusStarted,
			task.StatusCompleted}, statuses(snap.History))
		assert.Empty(t, snap.Late)
		assert.False(t, out.KilledAfterRun)
		written, err := os.ReadFile(stdout.Name())
		require.NoError(t, err)
		assert.Equal(t, "out\n", string(written))
		written, err = os.ReadFile(stderr.Name())
		require.NoError(t, err)
		assert.Equal(t, "err\n", string(written))
		requireGone(t, out.PID)
	})

	t.Run("nonzero exit status fails run", func(t *testing.T) {
		c := newCommand([]string{"sh", "-c", "exit 3"}, nil, nil, time.Second)
		_, result := startRun(t, processTask(testBound, testBound), c)
		out := awaitRun(t, result)

		assert.Equal(t, task.StatusFailed, out.Snapshot.Status)
		assert.Equal(t, task.ExitFailed, out.Snapshot.ExitCode)
		assert.ErrorIs(t, out.Snapshot.Err, task.ErrFailed)
		var exitErr *exec.ExitError
		require.ErrorAs(t, out.Snapshot.Err, &exitErr)
		assert.Equal(t, 3, exitErr.ExitCode())
		assert.Equal(t, processExit{PID: out.PID, ExitStatus: 3}, out.Exit)
		requireGone(t, out.PID)
	})

	t.Run("missing program abandons run", func(t *testing.T) {
		c := newCommand([]string{"taskrun-test-no-such-program"}, nil, nil, time.Second)
		_, result := startRun(t, processTask(testBound, testBound), c)
		out := awaitRun(t, result)

		assert.Equal(t, task.StatusAbandoned, out.Snapshot.Status)
		assert.Equal(t, task.ExitFailed, out.Snapshot.ExitCode)
		assert.ErrorIs(t, out.Snapshot.Err, exec.ErrNotFound)
		assert.ErrorContains(t, out.Snapshot.Err, "taskrun-test-no-such-program")
		assert.Zero(t, out.PID)
	})

	t.Run("timeout stops process with SIGTERM", func(t *testing.T) {
		// The kill delay is the test bound, so only SIGTERM can stop sleep.
		c := newCommand([]string{"sleep", "10"}, nil, nil, testBound)
		_, result := startRun(t, processTask(50*time.Millisecond, testBound), c)
		out := awaitRun(t, result)

		snap := out.Snapshot
		assert.Equal(t, task.StatusStopped, snap.Status)
		assert.Equal(t, task.ExitTimedOut, snap.ExitCode)
		assert.ErrorIs(t, snap.Err, task.ErrTimedOut)
		assert.Equal(t, "terminated", out.Exit.Signal)
		assert.Equal(t, []string{"fail in STOPPING", "confirm in STOPPED"}, lateEvents(snap.Late))
		assert.False(t, snap.WorkRunning)
		requireGone(t, out.PID)
	})

	t.Run("process ignoring SIGTERM is killed", func(t *testing.T) {
		ready, stdout := readyPipe(t)
		c := newCommand([]string{"sh", "-c", ignoreTERMScript}, stdout, nil, 50*time.Millisecond)
		cancel, result := startRun(t, processTask(0, testBound), c)
		sleepPID := readPID(t, ready)
		cancel(errors.New("test cancels the run"))
		out := awaitRun(t, result)

		snap := out.Snapshot
		assert.Equal(t, task.StatusStopped, snap.Status)
		assert.Equal(t, task.ExitCanceled, snap.ExitCode)
		assert.ErrorIs(t, snap.Err, task.ErrCanceled)
		assert.Equal(t, "killed", out.Exit.Signal)
		assert.False(t, out.KilledAfterRun)
		requireGone(t, out.PID)
		requireGone(t, sleepPID)
	})

	t.Run("stop timeout leaves run unknown", func(t *testing.T) {
		ready, stdout := readyPipe(t)
		// The cancel function would send SIGKILL only after the test
		// bound, long after the stop timeout.
		c := newCommand([]string{"sh", "-c", ignoreTERMScript}, stdout, nil, testBound)
		cancel, result := startRun(t, processTask(0, 50*time.Millisecond), c)
		sleepPID := readPID(t, ready)
		cancel(errors.New("test cancels the run"))
		out := awaitRun(t, result)

		snap := out.Snapshot
		assert.Equal(t, task.StatusUnknown, snap.Status)
		assert.Equal(t, task.ExitCancelTimedOut, snap.ExitCode)
		assert.ErrorIs(t, snap.Err, task.ErrStopTimedOut)
		assert.True(t, out.KilledAfterRun)
		assert.Equal(t, "killed", out.Exit.Signal)
		assert.False(t, snap.WorkRunning)
		assert.ElementsMatch(t, []string{"stop_fail in UNKNOWN", "fail in UNKNOWN"},
			lateEvents(snap.Late))
		requireGone(t, out.PID)
		requireGone(t, sleepPID)
	})

	t.Run("stopped process continued after SIGTERM", func(t *testing.T) {
		ready, stdout := readyPipe(t)
		script := "trap 'exit 7' TERM; echo $$; while :; do sleep 0.1; done"
		c := newCommand([]string{"sh", "-c", script}, stdout, nil, testBound)
		cancel, result := startRun(t, processTask(0, testBound), c)
		pid := readPID(t, ready)
		require.NoError(t, syscall.Kill(-pid, syscall.SIGSTOP))
		cancel(errors.New("test cancels the run"))
		out := awaitRun(t, result)

		// Exit status 7 shows that the shell ran its SIGTERM trap, which
		// a stopped shell can do only once continued.
		assert.Equal(t, task.StatusStopped, out.Snapshot.Status)
		assert.Equal(t, processExit{PID: pid, ExitStatus: 7}, out.Exit)
		requireGone(t, pid)
	})

	t.Run("background child gone before completion", func(t *testing.T) {
		stdout, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
		require.NoError(t, err)
		defer stdout.Close()
		// The Completed callback runs before the run is done, so it checks
		// the group as the work's return left it.
		var sleepPID int
		var atCompletion error
		cb := task.Callbacks[*processExit]{
			Completed: func(*task.Invocation[*processExit], *processExit) {
				written, err := os.ReadFile(stdout.Name())
				if err == nil {
					sleepPID, err = strconv.Atoi(strings.TrimSpace(string(written)))
				}
				if err == nil {
					err = syscall.Kill(sleepPID, 0)
				}
				atCompletion = err
			},
		}
		c := newCommand([]string{"sh", "-c", "sleep 10 & echo $!"}, stdout, nil, time.Second)
		_, result := startRun(t, processTask(testBound, testBound), c, cb)
		out := awaitRun(t, result)

		assert.Equal(t, task.StatusCompleted, out.Snapshot.Status)
		assert.ErrorIs(t, atCompletion, syscall.ESRCH, "background sleep at completion")
		requireGone(t, out.PID)
		requireGone(t, sleepPID)
	})

	t.Run("cancel before start runs nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		c := newCommand([]string{"sleep", "10"}, nil, nil, time.Second)
		out, err := runCommand(ctx, processTask(testBound, testBound), c, task.Callbacks[*processExit]{})
		require.NoError(t, err)

		assert.Equal(t, []task.Status{task.StatusStarting, task.StatusStopping,
			task.StatusStopped}, statuses(out.Snapshot.History))
		assert.Equal(t, task.ExitCanceled, out.Snapshot.ExitCode)
		assert.Zero(t, out.PID)
	})
}

func TestReapGroup(t *testing.T) {
	t.Run("orphaned grandchild reaped here", func(t *testing.T) {
		becomeSubreaper()
		stdout, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
		require.NoError(t, err)
		defer stdout.Close()
		// A file, not a pipe, which the sleep would hold open until it ends.
		cmd := exec.Command("sh", "-c", "sleep 10 & echo $!")
		cmd.Stdout = stdout
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		require.NoError(t, cmd.Run())
		written, err := os.ReadFile(stdout.Name())
		require.NoError(t, err)
		sleepPID, err := strconv.Atoi(strings.TrimSpace(string(written)))
		require.NoError(t, err)

		// Its parent shell has exited, so the sleep is now a child of
		// this process, which alone can reap it.
		stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(sleepPID), "stat"))
		require.NoError(t, err)
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		require.GreaterOrEqual(t, len(fields), 2)
		assert.Equal(t, strconv.Itoa(os.Getpid()), fields[1], "parent of the sleep")

		require.NoError(t, reapGroup(cmd.Process.Pid, time.Now().Add(testBound)))
		requireGone(t, sleepPID)
	})
}
