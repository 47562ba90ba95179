//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasklife/task"
)

// TestMain fails the test binary if any goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseArgs(t *testing.T) {
	valid := []struct {
		name string
		args []string
		want config
	}{{
		name: "defaults split stop timeout",
		args: []string{"sleep", "1"},
		want: config{stopTimeout: 10 * time.Second, killDelay: 5 * time.Second,
			argv: []string{"sleep", "1"}},
	}, {
		name: "unlimited stop kills after default",
		args: []string{"-stop-timeout", "0", "sleep", "1"},
		want: config{killDelay: defaultKillDelay, argv: []string{"sleep", "1"}},
	}, {
		name: "explicit zero kill delay kept",
		args: []string{"-stop-timeout", "1s", "-kill-after", "0", "sleep", "1"},
		want: config{stopTimeout: time.Second, argv: []string{"sleep", "1"}},
	}, {
		name: "double dash ends the flags",
		args: []string{"-timeout", "2s", "-stop-timeout", "1s", "--", "sh", "-c", "exit 0"},
		want: config{timeout: 2 * time.Second, stopTimeout: time.Second,
			killDelay: 500 * time.Millisecond, argv: []string{"sh", "-c", "exit 0"}},
	}}
	for _, tc := range valid {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cfg, err := parseArgs(tc.args, &stderr)
			require.NoError(t, err)
			assert.Equal(t, tc.want, cfg)
			assert.Empty(t, stderr.String())
		})
	}

	invalid := []struct {
		name    string
		args    []string
		message string // what stderr must contain
	}{
		{"negative timeout names value", []string{"-timeout", "-1s", "sleep", "1"},
			"invalid -timeout -1s: must not be negative"},
		{"negative stop timeout names value", []string{"-stop-timeout", "-2s", "sleep", "1"},
			"invalid -stop-timeout -2s: must not be negative"},
		{"negative kill delay names value", []string{"-kill-after", "-3ms", "sleep", "1"},
			"invalid -kill-after -3ms: must not be negative"},
		{"flags without command rejected", []string{"-timeout", "2s"}, "missing command"},
		{"lone double dash rejected", []string{"--"}, "missing command"},
		{"malformed duration names value", []string{"-timeout", "2 seconds", "sleep", "1"},
			`invalid value "2 seconds" for flag -timeout`},
		{"unknown flag named", []string{"-retries", "3", "sleep", "1"},
			"flag provided but not defined: -retries"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseArgs(tc.args, &stderr)
			require.Error(t, err)
			assert.Contains(t, stderr.String(), tc.message)
		})
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		code task.ExitCode
		want int
	}{
		{task.ExitCompleted, 0},
		{task.ExitFailed, 1},
		{task.ExitTimedOut, 3},
		{task.ExitCanceled, 4},
		{task.ExitCancelFailed, 5},
		{task.ExitCancelTimedOut, 6},
		{task.ExitUnknown, 1},
	}
	for _, tc := range tests {
		t.Run(tc.code.String()+" maps to status", func(t *testing.T) {
			assert.Equal(t, tc.want, exitStatus(tc.code))
		})
	}
}

// outputFiles returns files for the standard output and error of run,
// and a function that reads what was written to each.
func outputFiles(t *testing.T) (stdout, stderr *os.File, read func(*os.File) string) {
	t.Helper()
	dir := t.TempDir()
	stdout, err := os.Create(filepath.Join(dir, "stdout"))
	require.NoError(t, err)
	t.Cleanup(func() { stdout.Close() })
	stderr, err = os.Create(filepath.Join(dir, "stderr"))
	require.NoError(t, err)
	t.Cleanup(func() { stderr.Close() })
	return stdout, stderr, func(f *os.File) string {
		data, err := os.ReadFile(f.Name())
		require.NoError(t, err)
		return string(data)
	}
}

// snapshotAfter parses the snapshot that taskrun prints after the
// command's output: the JSON object that starts on the first line that is
// "{".
func snapshotAfter(t *testing.T, stdout string) (commandOutput string, snap task.Snapshot[*processExit]) {
	t.Helper()
	i := strings.Index("\n"+stdout, "\n{\n")
	require.GreaterOrEqual(t, i, 0, "no JSON object in %q", stdout)
	require.NoError(t, json.Unmarshal([]byte(stdout[i:]), &snap))
	return stdout[:i], snap
}

func TestRun(t *testing.T) {
	t.Run("invalid flag exits two", func(t *testing.T) {
		stdout, stderr, read := outputFiles(t)
		status := run(t.Context(), []string{"-timeout", "-1s", "sleep", "1"}, stdout, stderr)

		assert.Equal(t, exitUsage, status)
		assert.Contains(t, read(stderr), "invalid -timeout -1s")
		assert.Empty(t, read(stdout))
	})

	t.Run("help flag exits zero", func(t *testing.T) {
		stdout, stderr, read := outputFiles(t)
		status := run(t.Context(), []string{"-h"}, stdout, stderr)

		assert.Equal(t, 0, status)
		assert.Contains(t, read(stderr), "usage: taskrun")
	})

	t.Run("failed command exits one", func(t *testing.T) {
		stdout, stderr, read := outputFiles(t)
		status := run(t.Context(), []string{"--", "sh", "-c", "echo partial; exit 3"},
			stdout, stderr)

		assert.Equal(t, 1, status)
		output, snap := snapshotAfter(t, read(stdout))
		assert.Equal(t, "partial\n", output)
		assert.Equal(t, task.StatusFailed, snap.Status)
		assert.Contains(t, read(stderr), "STARTED   -> FAILED     fail          failed")
	})

	t.Run("timed out command exits three", func(t *testing.T) {
		stdout, stderr, read := outputFiles(t)
		status := run(t.Context(), []string{"-timeout", "50ms", "sleep", "10"}, stdout, stderr)

		assert.Equal(t, 3, status)
		_, snap := snapshotAfter(t, read(stdout))
		assert.Equal(t, task.StatusStopped, snap.Status)
		assert.Equal(t, task.ExitTimedOut, snap.ExitCode)
		require.NotEmpty(t, snap.Late)
		require.NotNil(t, snap.Late[0].Value)
		requireGone(t, snap.Late[0].Value.PID)
	})

	t.Run("unstoppable command exits six", func(t *testing.T) {
		_, stderr, read := outputFiles(t)
		ready, stdout := readyPipe(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		statusCh := make(chan int, 1)
		go func() {
			statusCh <- run(ctx, []string{"-stop-timeout", "50ms", "-kill-after", "20s",
				"--", "sh", "-c", ignoreTERMScript}, stdout, stderr)
		}()
		sleepPID := readPID(t, ready)
		cancel()

		select {
		case status := <-statusCh:
			assert.Equal(t, 6, status)
		case <-time.After(testBound):
			require.FailNow(t, "taskrun still running", "after %v", testBound)
		}
		assert.Contains(t, read(stderr), "STOPPING  -> UNKNOWN    stop_timeout  cancelTimedOut")
		assert.Contains(t, read(stderr), "taskrun sent it SIGKILL")
		requireGone(t, sleepPID)
	})
}

func TestRunDemo(t *testing.T) {
	stdout, stderr, read := outputFiles(t)
	status := run(t.Context(), nil, stdout, stderr)

	table := read(stdout)
	assert.Equal(t, 0, status, "table:\n%s\nstderr:\n%s", table, read(stderr))
	for _, s := range demoScenarios {
		assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(s.name)+`\s+`+s.wantStatus.String()+`\s+`+
			s.wantCode.String()+`\s.*\sok$`, table)
	}
	pids := regexp.MustCompile(`pid (\d+) (?:exited|killed)`).FindAllStringSubmatch(table, -1)
	assert.Len(t, pids, len(demoScenarios)-1, "every scenario but one starts a process")
	for _, m := range pids {
		pid, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		requireGone(t, pid)
	}
}

// buildTaskrun builds the taskrun binary into a temporary directory.
func buildTaskrun(t *testing.T) string {
	t.Helper()
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build taskrun with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "taskrun")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, gotool, "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// exitStatusOf returns the exit status in err, the error of a command's
// Wait or Run.
func exitStatusOf(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	return exitErr.ExitCode()
}

func TestBinary(t *testing.T) {
	bin := buildTaskrun(t)

	t.Run("completed command prints snapshot", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), testBound)
		defer cancel()
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "-timeout", "10s", "-stop-timeout", "1s", "--",
			"sh", "-c", "echo hello")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()

		assert.Equal(t, 0, exitStatusOf(t, err), "stderr: %s", stderr.String())
		output, snap := snapshotAfter(t, stdout.String())
		assert.Equal(t, "hello\n", output)
		assert.Equal(t, task.StatusCompleted, snap.Status)
		assert.Equal(t, task.ExitCompleted, snap.ExitCode)
		require.NotNil(t, snap.Result)
		requireGone(t, snap.Result.PID)
	})

	t.Run("negative stop timeout exits two", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), testBound)
		defer cancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "-stop-timeout", "-2s", "sleep", "1")
		cmd.Stderr = &stderr
		err := cmd.Run()

		assert.Equal(t, exitUsage, exitStatusOf(t, err))
		assert.Contains(t, stderr.String(), "invalid -stop-timeout -2s")
	})

	t.Run("interrupt cancels the run", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), testBound)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--", "sh", "-c", "echo $$; exec sleep 10")
		stdoutPipe, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		stdout := bufio.NewReader(stdoutPipe)
		pid := readPID(t, stdout)
		require.NoError(t, cmd.Process.Signal(os.Interrupt))
		rest, readErr := io.ReadAll(stdout)
		err = cmd.Wait()

		require.NoError(t, readErr)
		assert.Equal(t, 4, exitStatusOf(t, err))
		var snap task.Snapshot[*processExit]
		require.NoError(t, json.Unmarshal(rest, &snap))
		assert.Equal(t, task.StatusStopped, snap.Status)
		assert.Equal(t, task.ExitCanceled, snap.ExitCode)
		assert.Contains(t, snap.Cause.Error(), "interrupt")
		requireGone(t, pid)
	})
}

func TestParseArgs_Help(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseArgs([]string{"-h"}, &stderr)

	assert.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, stderr.String(), "-kill-after duration")
}
