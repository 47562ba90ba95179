//go:build unix

// Taskrun runs a command as the work of a [task.Task] and prints its
// lifecycle as it happens.
//
// Usage:
//
//	taskrun [-timeout d] [-stop-timeout d] [-kill-after d] [--] command [arg...]
//	taskrun
//
// The command runs in its own process group, reads no input, and writes to
// taskrun's standard output and standard error. The run is cancelled when
// -timeout elapses or when taskrun receives SIGINT (Ctrl-C) or SIGTERM.
// The cancel function then sends SIGTERM to the process group, and SIGKILL
// if the process has not exited after -kill-after. The run is STOPPED once
// the process has exited, or UNKNOWN with exit code cancelTimedOut if
// -stop-timeout elapses first. Either way taskrun kills and reaps what is
// left of the process group before it exits, so no process of the group
// outlives it.
//
// The flags take Go durations, such as 300ms or 2s:
//
//	-timeout       bound on the run, counted from its start; 0 (the default) means no limit
//	-stop-timeout  bound on the stop, counted from the cancellation; 10s by default, 0 means no limit
//	-kill-after    delay from SIGTERM to SIGKILL; half of -stop-timeout by default, or 10s
//	               when -stop-timeout is 0
//
// Standard error gets one line for each transition (time since the start,
// old and new status, event, exit code) and for each ignored event. Once
// the process group is gone, the snapshot of the run follows on standard
// output as indented JSON, after anything the command wrote there.
//
// The exit status of taskrun follows the exit code of the run:
//
//	0  completed       the command exited with status 0
//	1  failed          the command exited with another status or could not start
//	2                  invalid flags or a missing command
//	3  timedOut        -timeout elapsed and the process was stopped
//	4  canceled        SIGINT or SIGTERM arrived and the process was stopped
//	5  cancelFailed    the cancel function could not signal the process group
//	6  cancelTimedOut  the process had not exited when -stop-timeout elapsed
//	7                  the process group was still there after SIGKILL
//
// With no arguments, taskrun runs a demo of about a second on real
// processes, one for each way a run ends, and prints a summary table.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tasklife/task"
)

// Exit statuses of taskrun that no run exit code maps to.
const (
	exitUsage     = 2
	exitNotReaped = 7
)

// exitStatuses maps the exit code of a finished run to the exit status of
// taskrun.
var exitStatuses = map[task.ExitCode]int{
	task.ExitCompleted:      0,
	task.ExitFailed:         1,
	task.ExitTimedOut:       3,
	task.ExitCanceled:       4,
	task.ExitCancelFailed:   5,
	task.ExitCancelTimedOut: 6,
}

// exitStatus returns the exit status of taskrun for a run that ended with
// code. Every finished run has one of the codes of exitStatuses; any other
// counts as failed.
func exitStatus(code task.ExitCode) int {
	if status, ok := exitStatuses[code]; ok {
		return status
	}
	return exitStatuses[task.ExitFailed]
}

const (
	defaultStopTimeout = 10 * time.Second
	// defaultKillDelay is the delay from SIGTERM to SIGKILL when the stop
	// has no time limit. It is the grace period of docker stop, and gives
	// a process time to shut down without leaving a Ctrl-C waiting long.
	defaultKillDelay = 10 * time.Second
)

const usage = `usage: taskrun [flags] [--] command [arg...]
       taskrun    (no arguments: run the demo)

Runs command as the work of a task, prints each transition to standard
error and the final snapshot as JSON to standard output.

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	status := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(status)
}

// run runs taskrun with the command-line arguments args and returns its
// exit status. The end of ctx cancels the run.
func run(ctx context.Context, args []string, stdout, stderr *os.File) int {
	if len(args) == 0 {
		return runDemo(ctx, stdout, stderr)
	}
	cfg, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return exitUsage
	}

	c := newCommand(cfg.argv, stdout, stderr, cfg.killDelay)
	tr := &tracer{w: stderr}
	out, err := runCommand(ctx, processTask(cfg.timeout, cfg.stopTimeout), c, tr.callbacks())
	if out.KilledAfterRun {
		fmt.Fprintf(stderr, "taskrun: process group %d was still running when the run ended %s; "+
			"taskrun sent it SIGKILL\n", out.PID, out.Snapshot.Status)
	}
	if err != nil {
		fmt.Fprintf(stderr, "taskrun: %v\n", err)
	}

	data, jsonErr := json.MarshalIndent(out.Snapshot, "", "  ")
	if jsonErr != nil {
		fmt.Fprintf(stderr, "taskrun: marshal snapshot: %v\n", jsonErr)
	} else {
		fmt.Fprintf(stdout, "%s\n", data)
	}
	if err != nil {
		return exitNotReaped
	}
	return exitStatus(out.Snapshot.ExitCode)
}

// config is the parsed command line.
type config struct {
	timeout     time.Duration
	stopTimeout time.Duration
	killDelay   time.Duration
	argv        []string // the command and its arguments
}

// parseArgs parses the command-line arguments. On an error it has already
// printed the message and the usage to stderr. It returns [flag.ErrHelp]
// for -h.
func parseArgs(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("taskrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.DurationVar(&cfg.timeout, "timeout", 0,
		"bound on the run, counted from its start; 0 means no limit")
	fs.DurationVar(&cfg.stopTimeout, "stop-timeout", defaultStopTimeout,
		"bound on the stop, counted from the cancellation; 0 means no limit")
	fs.DurationVar(&cfg.killDelay, "kill-after", 0,
		"delay from SIGTERM to SIGKILL (default half of -stop-timeout, or 10s when it is 0)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}

	err := validate(&cfg, fs)
	if err != nil {
		fmt.Fprintf(stderr, "taskrun: %v\nRun taskrun -h for the flags.\n", err)
	}
	return cfg, err
}

// validate checks the parsed flags and arguments and fills in the default
// kill delay.
func validate(cfg *config, fs *flag.FlagSet) error {
	if cfg.timeout < 0 {
		return fmt.Errorf("invalid -timeout %v: must not be negative; 0 means no limit", cfg.timeout)
	}
	if cfg.stopTimeout < 0 {
		return fmt.Errorf("invalid -stop-timeout %v: must not be negative; 0 means no limit",
			cfg.stopTimeout)
	}
	if cfg.killDelay < 0 {
		return fmt.Errorf("invalid -kill-after %v: must not be negative; "+
			"0 sends SIGKILL right after SIGTERM", cfg.killDelay)
	}
	cfg.argv = fs.Args()
	if len(cfg.argv) == 0 {
		return errors.New("missing command: give it after the flags, " +
			"as in taskrun -timeout 2s -- sleep 10")
	}

	killSet := false
	fs.Visit(func(f *flag.Flag) { killSet = killSet || f.Name == "kill-after" })
	if !killSet {
		cfg.killDelay = killDelayFor(cfg.stopTimeout)
	}
	return nil
}

// killDelayFor returns the default delay from SIGTERM to SIGKILL: half of
// stopTimeout, which leaves the other half for the process to die of
// SIGKILL, or defaultKillDelay when the stop has no time limit.
func killDelayFor(stopTimeout time.Duration) time.Duration {
	if stopTimeout == 0 {
		return defaultKillDelay
	}
	return stopTimeout / 2
}
