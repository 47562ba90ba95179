package taskriver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/tasklife/task"
)

// DefaultPollInterval is how often [Client.Wait] reads the job row when
// ClientConfig.PollInterval is zero.
const DefaultPollInterval = 100 * time.Millisecond

// ClientConfig configures a [Client]. The zero value is ready to use.
type ClientConfig struct {
	// PollInterval is how often Wait reads the job row. Zero means
	// DefaultPollInterval. It must not be negative.
	PollInterval time.Duration
}

// Client starts, reads, waits for and cancels runs whose result type is T,
// through a River client that need not work any jobs itself, in any
// process that shares the database. It is safe for concurrent use.
type Client[TTx any, T any] struct {
	river *river.Client[TTx]
	poll  time.Duration
}

// NewClient returns a Client on rc. It returns an error naming the value if
// rc is nil or config.PollInterval is negative. A nil config means the zero
// ClientConfig.
func NewClient[T any, TTx any](rc *river.Client[TTx], config *ClientConfig) (*Client[TTx, T], error) {
	if rc == nil {
		return nil, errors.New("taskriver: missing River client: got nil")
	}
	if config == nil {
		config = &ClientConfig{}
	}
	if config.PollInterval < 0 {
		return nil, fmt.Errorf("taskriver: invalid PollInterval %v: must not be negative", config.PollInterval)
	}
	poll := config.PollInterval
	if poll == 0 {
		poll = DefaultPollInterval
	}
	return &Client[TTx, T]{river: rc, poll: poll}, nil
}

// Start inserts a job with args, whose kind must have a [Worker] for T in
// the workers' clients, and returns the job ID that names the run.
func (c *Client[TTx, T]) Start(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (int64, error) {
	if err := checkArgs(args); err != nil {
		return 0, err
	}
	res, err := c.river.Insert(ctx, args, opts)
	if err != nil {
		return 0, fmt.Errorf("taskriver: insert %s job: %w", args.Kind(), err)
	}
	return res.Job.ID, nil
}

// StartTx is Start within the caller's transaction tx: no worker sees the
// job before tx commits, and none ever if it rolls back.
func (c *Client[TTx, T]) StartTx(ctx context.Context, tx TTx, args river.JobArgs, opts *river.InsertOpts) (int64, error) {
	if err := checkArgs(args); err != nil {
		return 0, err
	}
	res, err := c.river.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return 0, fmt.Errorf("taskriver: insert %s job: %w", args.Kind(), err)
	}
	return res.Job.ID, nil
}

// Get reads the run of job id as it is in the database now. The error
// of a job that does not exist names id and matches river.ErrNotFound.
func (c *Client[TTx, T]) Get(ctx context.Context, id int64) (*Run[T], error) {
	job, err := c.river.JobGet(ctx, id)
	if err != nil {
		return nil, lookupError(id, err)
	}
	return decodeRun[T](job)
}

// Wait reads the run of job id until River has finished with it (see
// [Run.Finished]) and returns it. A run that failed and is to be retried is
// not finished. If ctx ends first, Wait returns the last run it read, or
// nil if it read none, with an error that wraps context.Cause of ctx.
func (c *Client[TTx, T]) Wait(ctx context.Context, id int64) (*Run[T], error) {
	ticker := time.NewTicker(c.poll)
	defer ticker.Stop()
	var last *Run[T]
	for {
		run, err := c.Get(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return last, fmt.Errorf("taskriver: wait for job %d: %w", id, context.Cause(ctx))
			}
			return last, err
		}
		last = run
		if run.Finished() {
			return run, nil
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("taskriver: wait for job %d: %w", id, context.Cause(ctx))
		case <-ticker.C:
		}
	}
}

// Cancel asks River to cancel job id and returns the run as it is
// right after. A job still in the queue is cancelled at once and never
// runs. A running job's worker learns of it through River's control
// notifications (LISTEN/NOTIFY on PostgreSQL). It cancels the run, whose
// task cancel function then runs under its StopTimeout. A finished
// job is left alone. The error of a job that does not exist names id and
// matches river.ErrNotFound.
func (c *Client[TTx, T]) Cancel(ctx context.Context, id int64) (*Run[T], error) {
	job, err := c.river.JobCancel(ctx, id)
	if err != nil {
		return nil, lookupError(id, err)
	}
	return decodeRun[T](job)
}

// CancelTx is Cancel within the caller's transaction tx: the cancel takes
// effect when tx commits.
func (c *Client[TTx, T]) CancelTx(ctx context.Context, tx TTx, id int64) (*Run[T], error) {
	job, err := c.river.JobCancelTx(ctx, tx, id)
	if err != nil {
		return nil, lookupError(id, err)
	}
	return decodeRun[T](job)
}

// checkArgs rejects nil job args, including a nil pointer in the
// interface, whose Kind method River would call and panic on.
func checkArgs(args river.JobArgs) error {
	if args == nil {
		return errors.New("taskriver: missing job args: got nil")
	}
	if v := reflect.ValueOf(args); v.Kind() == reflect.Pointer && v.IsNil() {
		return fmt.Errorf("taskriver: missing job args: got a nil %T", args)
	}
	return nil
}

func lookupError(id int64, err error) error {
	if errors.Is(err, rivertype.ErrNotFound) {
		return fmt.Errorf("taskriver: run of job %d not found: %w", id, err)
	}
	return fmt.Errorf("taskriver: read job %d: %w", id, err)
}

// Run is a run of a task as a job row records it: River's view of the job
// and the snapshot the worker last wrote for its latest attempt.
type Run[T any] struct {
	JobID int64
	Kind  string

	// State is River's state of the job, such as running or completed.
	State rivertype.JobState

	// Attempt is River's count of attempts made so far.
	Attempt int

	// Worker is the ID of the River client that ran the recorded attempt,
	// or empty before a worker first wrote the row.
	Worker string

	// Task is the snapshot of the recorded attempt's run. Its Status is
	// zero before a worker first wrote the row.
	Task task.Snapshot[T]

	// TaskAttempt is the number of the attempt that Task is about.
	TaskAttempt int

	// Earlier holds the last record of each earlier attempt, oldest first.
	// An attempt whose worker died shows the last status it wrote.
	Earlier []Attempt[T]

	// Errors are River's errors of the failed attempts, such as the
	// rescue of a job whose worker died.
	Errors []rivertype.AttemptError
}

// Attempt is the last record of one attempt of a run.
type Attempt[T any] struct {
	Number int
	Worker string
	Task   task.Snapshot[T]
}

// Finished reports whether River is done with the job: it completed, was
// cancelled or was discarded after its last attempt. The work of a
// finished run can still be running: see Task.WorkRunning.
func (r *Run[T]) Finished() bool {
	switch r.State {
	case rivertype.JobStateCompleted, rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
		return true
	}
	return false
}

// Err returns nil for a job that completed, and otherwise an error that
// matches, with errors.Is, the task sentinel for the way the recorded run
// ended (task.ErrFailed, task.ErrCanceled, task.ErrTimedOut,
// task.ErrStopFailed, task.ErrStopTimedOut or task.ErrAbandoned), with the
// run's error message. A run that completed but whose result could not be
// stored matches task.ErrFailed, with River's error for the attempt. A job
// cancelled before any attempt began matches task.ErrCanceled. Err
// returns nil for a run that has not finished.
func (r *Run[T]) Err() error {
	if !r.Finished() || r.State == rivertype.JobStateCompleted {
		return nil
	}
	var sentinel error
	switch r.Task.Status {
	case task.StatusAbandoned:
		sentinel = task.ErrAbandoned
	case task.StatusUnknown:
		sentinel = task.ErrStopFailed
		if r.Task.ExitCode == task.ExitCancelTimedOut {
			sentinel = task.ErrStopTimedOut
		}
	case task.StatusStopped:
		sentinel = task.ErrCanceled
		if r.Task.ExitCode == task.ExitTimedOut {
			sentinel = task.ErrTimedOut
		}
	case 0:
		if r.State == rivertype.JobStateCancelled {
			return fmt.Errorf("job %d cancelled before it started: %w", r.JobID, task.ErrCanceled)
		}
		sentinel = task.ErrFailed
	default:
		sentinel = task.ErrFailed
	}
	switch {
	case r.Task.Err != nil && errors.Is(r.Task.Err, sentinel):
		// The decoded error already matches the sentinel and names it.
		return fmt.Errorf("job %d %s: %w", r.JobID, r.State, r.Task.Err)
	case r.Task.Err != nil:
		return fmt.Errorf("job %d %s: %w: %w", r.JobID, r.State, sentinel, r.Task.Err)
	case len(r.Errors) > 0:
		// A run that completed but whose result could not be stored, a
		// run whose record is missing, or an attempt that River ended on
		// its own, such as a rescue. River's text may already start with
		// the sentinel's, and River marks its cancel errors.
		text := strings.TrimPrefix(r.Errors[len(r.Errors)-1].Error, "JobCancelError: ")
		if rest, ok := strings.CutPrefix(text, sentinel.Error()); ok {
			return fmt.Errorf("job %d %s: %w%s", r.JobID, r.State, sentinel, rest)
		}
		return fmt.Errorf("job %d %s: %w: %s", r.JobID, r.State, sentinel, text)
	}
	return fmt.Errorf("job %d %s: %w", r.JobID, r.State, sentinel)
}

func decodeRun[T any](job *rivertype.JobRow) (*Run[T], error) {
	run := &Run[T]{
		JobID:   job.ID,
		Kind:    job.Kind,
		State:   job.State,
		Attempt: job.Attempt,
		Errors:  job.Errors,
	}
	record := readRecord(job)
	if record == nil {
		return run, nil
	}

	run.Worker, run.TaskAttempt = record.Worker, record.Attempt
	if err := json.Unmarshal(record.Run, &run.Task); err != nil {
		return nil, fmt.Errorf("taskriver: decode run of job %d: %w", job.ID, err)
	}
	for _, a := range record.Earlier {
		attempt := Attempt[T]{Number: a.Attempt, Worker: a.Worker}
		if err := json.Unmarshal(a.Run, &attempt.Task); err != nil {
			return nil, fmt.Errorf("taskriver: decode attempt %d of job %d: %w", a.Attempt, job.ID, err)
		}
		run.Earlier = append(run.Earlier, attempt)
	}
	return run, nil
}
