//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tasklife/task"
	taskriver "github.com/tasklife/task/river"
)

// shellArgs are the args of a shell job: a script for sh -c.
type shellArgs struct {
	Name   string `json:"name"`
	Script string `json:"script"`
}

func (shellArgs) Kind() string { return "shell" }

// shellTask runs the job's script in its own process group. Its cancel
// function sends SIGTERM to the group and confirms the stop only once the
// process has exited, so a script that ignores SIGTERM leaves the run
// UNKNOWN when StopTimeout elapses.
var shellTask = task.Task[string]{
	Work:        runScript,
	Cancel:      stopScript,
	Timeout:     4 * time.Second,
	StopTimeout: 2 * time.Second,
}

// process is a running script. The work and the cancel function of a run
// execute in the same worker process and find it by the invocation's ID.
type process struct {
	exited chan struct{} // closed when the work returns

	// mu guards pid. The work holds it while it starts the script, and the
	// work's context is cancelled before the cancel function runs, so the
	// cancel function either finds the pid or the script never starts.
	mu  sync.Mutex
	pid int
}

var processes sync.Map // invocation ID -> *process

func runScript(ctx context.Context, inv *task.Invocation[string]) (string, error) {
	args := taskriver.ArgsOf[shellArgs](inv)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("sh", "-c", args.Script)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	p := &process{exited: make(chan struct{})}
	processes.Store(inv.ID(), p)
	defer processes.Delete(inv.ID())
	defer close(p.exited)
	if err := p.start(ctx, cmd); err != nil {
		return "", err
	}

	if err := cmd.Wait(); err != nil {
		if message := strings.TrimSpace(stderr.String()); message != "" {
			return "", fmt.Errorf("%w: %s", err, message)
		}
		return "", err
	}
	return strings.TrimSpace(stdout.String()), nil
}

func stopScript(ctx context.Context, inv *task.Invocation[string]) error {
	value, ok := processes.Load(inv.ID())
	if !ok {
		return nil // the work has returned, or never began
	}
	p := value.(*process)
	pid, err := p.terminate()
	if err != nil {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("process group %d still running: %w", pid, context.Cause(ctx))
	}
}

func (p *process) start(ctx context.Context, cmd *exec.Cmd) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ctx.Err() != nil {
		return fmt.Errorf("script not started: %w", context.Cause(ctx))
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.pid = cmd.Process.Pid
	return nil
}

// terminate sends SIGTERM to the script's process group, if it started,
// and returns its ID.
func (p *process) terminate() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid == 0 {
		return 0, nil
	}
	if err := syscall.Kill(-p.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return p.pid, fmt.Errorf("signal process group %d: %w", p.pid, err)
	}
	return p.pid, nil
}
