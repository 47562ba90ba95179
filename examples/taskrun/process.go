//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/tasklife/task"
)

// reapTimeout bounds how long the work waits, after it sent SIGKILL to
// the process group, for the group to be gone. SIGKILL cannot be caught or
// ignored, so only a process in uninterruptible sleep, such as one blocked
// on a dead NFS server, outlives it for long.
const reapTimeout = 5 * time.Second

// processExit is the end of a process: its ID, and its exit status or the
// signal that ended it. A pointer to it is the result of a completed run
// and the value of the work's late return in the snapshot of a stopped
// run. A run or an ignored event without a process exit has nil, which
// JSON shows as null.
type processExit struct {
	PID        int    `json:"pid"`
	ExitStatus int    `json:"exit_status"`      // -1 when a signal ended the process
	Signal     string `json:"signal,omitempty"` // the signal that ended the process
}

func (e processExit) String() string {
	if e.Signal != "" {
		return fmt.Sprintf("pid %d killed by signal %s", e.PID, e.Signal)
	}
	return fmt.Sprintf("pid %d exited with status %d", e.PID, e.ExitStatus)
}

// command is one run of a program in its own process group. It is the
// custom state of the run, given with [task.WithState], through which the
// stateless work and cancel functions of [processTask] share the process.
type command struct {
	path      string
	args      []string
	stdout    *os.File      // nil means /dev/null
	stderr    *os.File      // nil means /dev/null
	extra     []*os.File    // more open files for the process, from descriptor 3 on
	killDelay time.Duration // how long the cancel function waits from SIGTERM to SIGKILL

	// exited is closed when the work function returns: the process has
	// exited, or it never started.
	exited chan struct{}

	// mu guards the fields below. The work holds it while it starts the
	// process, so the cancel function either finds the process or finds
	// that it will never start.
	mu             sync.Mutex
	pid            int  // the process ID, which is also its process group ID; 0 until started
	reaped         bool // the process has been waited for, so pid may be reused
	exit           processExit
	reapErr        error // the process group was not gone after SIGKILL
	killedAfterRun bool  // the run ended with the process still running
}

func newCommand(argv []string, stdout, stderr *os.File, killDelay time.Duration) *command {
	return &command{
		path:      argv[0],
		args:      argv[1:],
		stdout:    stdout,
		stderr:    stderr,
		killDelay: killDelay,
		exited:    make(chan struct{}),
	}
}

// processTask returns the task that runs a [command]: its work starts the
// process and waits for it, and its cancel function sends SIGTERM to the
// process group, then SIGKILL after the command's kill delay.
func processTask(timeout, stopTimeout time.Duration) task.Task[*processExit] {
	return task.Task[*processExit]{
		Work:        runProcess,
		Cancel:      stopProcess,
		Timeout:     timeout,
		StopTimeout: stopTimeout,
	}
}

// runProcess is the work: it runs the command to its end. Once the
// process has exited, the work kills and reaps what it left in its process
// group, so the work's return, even while the run is STOPPING, proves that
// the whole group has stopped. If the group is not gone within reapTimeout
// of SIGKILL, the work returns that error, whatever the exit status was.
func runProcess(ctx context.Context, inv *task.Invocation[*processExit]) (*processExit, error) {
	c := inv.State().(*command)
	defer close(c.exited)

	cmd := exec.Command(c.path, c.args...)
	// Files, not io.Writers: the child writes to them itself, so no
	// goroutine copies its output and Wait returns as soon as it exits.
	if c.stdout != nil {
		cmd.Stdout = c.stdout
	}
	if c.stderr != nil {
		cmd.Stderr = c.stderr
	}
	cmd.ExtraFiles = c.extra
	// Its own process group lets the cancel function signal the whole
	// tree, and keeps the terminal's Ctrl-C away from it: taskrun decides
	// how to stop it. Stdin stays /dev/null, since a background process
	// group that reads the terminal is stopped by SIGTTIN.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.start(ctx, cmd); err != nil {
		return nil, err
	}

	waitErr := cmd.Wait()
	exit := c.recordExit(cmd.ProcessState)
	if err := reapGroup(exit.PID, time.Now().Add(reapTimeout)); err != nil {
		c.mu.Lock()
		c.reapErr = err
		c.mu.Unlock()
		return &exit, err
	}
	if waitErr != nil {
		return &exit, fmt.Errorf("%s: %w", c.path, waitErr)
	}
	return &exit, nil
}

// start starts cmd unless the run is already being stopped.
func (c *command) start(ctx context.Context, cmd *exec.Cmd) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	// The work's context is cancelled before the cancel function runs, so
	// after this check under mu no process can start unseen by it.
	if ctx.Err() != nil {
		return fmt.Errorf("%s not started: %w", c.path, context.Cause(ctx))
	}
	if err := cmd.Start(); err != nil {
		err = fmt.Errorf("start %s: %w", c.path, err)
		// A missing or forbidden program fails the same way on every
		// retry; a full process table, say, may not.
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) ||
			errors.Is(err, fs.ErrPermission) {
			return task.Permanent(err)
		}
		return err
	}
	c.pid = cmd.Process.Pid
	return nil
}

// recordExit records how the waited-for process ended. From then on the
// cancel function and killAfterRun leave the process group alone: the
// work cleans it up.
func (c *command) recordExit(state *os.ProcessState) processExit {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reaped = true
	c.exit = processExit{PID: c.pid, ExitStatus: state.ExitCode()}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		c.exit.Signal = ws.Signal().String()
	}
	return c.exit
}

// stopProcess is the cancel function. It sends SIGTERM to the process
// group, and SIGKILL once the kill delay has passed. It then waits until
// the run is done, which happens when the work returns (the process has
// exited and the run is STOPPED), or until its context ends when
// StopTimeout elapses (the run is UNKNOWN). So the work's return, not this
// function, always confirms the stop, and the run ignores what this
// function returns.
func stopProcess(ctx context.Context, inv *task.Invocation[*processExit]) error {
	c := inv.State().(*command)

	// SIGCONT wakes a stopped process, which would otherwise leave SIGTERM
	// pending until someone continued it.
	if err := c.signal(syscall.SIGTERM, syscall.SIGCONT); err != nil {
		return err
	}
	timer := time.NewTimer(c.killDelay)
	defer timer.Stop()
	select {
	case <-inv.Done():
		return c.doneResult(ctx)
	case <-ctx.Done():
		return c.stopResult(ctx)
	case <-timer.C:
	}

	if err := c.signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-inv.Done():
		return c.doneResult(ctx)
	case <-ctx.Done():
		return c.stopResult(ctx)
	}
}

// doneResult returns the error for a cancel function whose run is done.
// The run ended UNKNOWN if ctx ended first, since StopTimeout ends ctx
// before the run's Done closes; otherwise the work's return stopped it.
func (c *command) doneResult(ctx context.Context) error {
	if ctx.Err() != nil {
		return c.stopResult(ctx)
	}
	return nil
}

// stopResult returns the error for a cancel function whose context
// ended: nil if the process exited, else why the cancel function gave up.
func (c *command) stopResult(ctx context.Context) error {
	select {
	case <-c.exited:
		return nil
	default:
		return fmt.Errorf("gave up waiting for process group %d: %w", c.groupID(), context.Cause(ctx))
	}
}

// signal sends each of sigs to the process group, unless the process never
// started or has been reaped. A group that is already gone is no error.
func (c *command) signal(sigs ...syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pid == 0 || c.reaped {
		return nil
	}
	for _, sig := range sigs {
		err := syscall.Kill(-c.pid, sig)
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("send %v to process group %d: %w", sig, c.pid, err)
		}
	}
	return nil
}

func (c *command) groupID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

// killAfterRun sends SIGKILL to the process group if the process is still
// running, as it may be after the run ended UNKNOWN.
func (c *command) killAfterRun() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pid == 0 || c.reaped {
		return
	}
	if syscall.Kill(-c.pid, syscall.SIGKILL) == nil {
		c.killedAfterRun = true
	}
}

// outcome is a finished run of a command, read once its process group is
// gone.
type outcome struct {
	Snapshot task.Snapshot[*processExit]
	PID      int         // 0 if the process never started
	Exit     processExit // zero if the process never started

	// KilledAfterRun reports that the run ended with the process still
	// running, so that taskrun sent it SIGKILL afterwards.
	KilledAfterRun bool
}

// runCommand runs c under t with the callbacks cb and returns once the run
// has finished, its work and cancel functions have returned and no process
// of c's group is left, so the snapshot it returns is final. A process
// still running when the run ends, as after StatusUnknown, is sent SIGKILL.
//
// On Linux, the first call makes the calling process the child subreaper
// of its descendants, so that it can reap the processes of the group whose
// parent died. runCommand returns an error, with the outcome as far as it
// is known, if the group is not gone after SIGKILL.
func runCommand(ctx context.Context, t task.Task[*processExit], c *command,
	cb task.Callbacks[*processExit]) (outcome, error) {
	becomeSubreaper()
	returns := newReturnWatch()
	inv := t.Start(ctx, task.WithState(c), task.WithCallbacks(cb),
		task.WithCallbacks(returns.callbacks()))
	<-inv.Done()

	// The work and the cancel function still running now will return
	// soon: the process is killed, and the cancel function's context has
	// ended with the run's stop.
	began, cancelRan := false, false
	for _, tr := range inv.Snapshot().History {
		began = began || tr.Event == task.EventBegin
		cancelRan = cancelRan || (tr.From == task.StatusStarted && tr.To == task.StatusStopping)
	}
	if began {
		c.killAfterRun()
	}
	// The work needs up to reapTimeout to reap the group; the margin
	// covers the time its process takes to die of SIGKILL.
	deadline := time.NewTimer(reapTimeout + time.Second)
	defer deadline.Stop()
	err := returns.wait(deadline.C, began, cancelRan)

	c.mu.Lock()
	out := outcome{PID: c.pid, Exit: c.exit, KilledAfterRun: c.killedAfterRun}
	if err == nil {
		err = c.reapErr
	}
	c.mu.Unlock()
	out.Snapshot = inv.Snapshot()
	return out, err
}

// returnWatch learns from the callbacks when the library has recorded the
// return of the work and of the cancel function, so that a snapshot taken
// afterwards holds their late values.
type returnWatch struct {
	work, cancel chan struct{}
}

func newReturnWatch() *returnWatch {
	return &returnWatch{work: make(chan struct{}), cancel: make(chan struct{})}
}

// note closes the channel for the function whose return event e is. The
// library runs the work once and the cancel function at most once, so
// each channel is closed at most once.
func (w *returnWatch) note(e task.Event) {
	switch e {
	case task.EventReturn, task.EventFail, task.EventPermanent:
		close(w.work)
	case task.EventConfirm, task.EventStopFail:
		close(w.cancel)
	}
}

func (w *returnWatch) callbacks() task.Callbacks[*processExit] {
	return task.Callbacks[*processExit]{
		Changed: func(_ *task.Invocation[*processExit], t task.Transition) { w.note(t.Event) },
		Ignored: func(_ *task.Invocation[*processExit], e task.Ignored[*processExit]) { w.note(e.Event) },
	}
}

// wait waits for the work's return if it began and the cancel function's
// if it ran, until deadline fires.
func (w *returnWatch) wait(deadline <-chan time.Time, work, cancel bool) error {
	if work {
		select {
		case <-w.work:
		case <-deadline:
			return errors.New("work still running after SIGKILL")
		}
	}
	if cancel {
		select {
		case <-w.cancel:
		case <-deadline:
			return errors.New("cancel function still running after the run ended")
		}
	}
	return nil
}

// reapGroup sends SIGKILL to process group pgid, reaps its processes that
// became children of this process, and returns once the group is empty, or
// an error at deadline. It must run after the group's leader has been
// waited for, since it would otherwise take the leader's exit status from
// os/exec.
func reapGroup(pgid int, deadline time.Time) error {
	for {
		// NOTE: Wait has released the leader's process ID. While any
		// process of the group is left, the kernel keeps the group ID from
		// reuse. If none is left, the ID could in theory be reused before
		// this kill, but only after the kernel cycled through every other
		// free process ID.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		// A zombie still counts as a member, so ESRCH means every process
		// of the group has exited and been reaped.
		err := syscall.Kill(-pgid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("check process group %d: %w", pgid, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d still has processes after SIGKILL", pgid)
		}
		// A process whose parent is dying reaches this process only once
		// that parent has exited.
		time.Sleep(5 * time.Millisecond)
	}
}
