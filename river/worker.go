package taskriver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/tasklife/task"
)

// DefaultTimeoutMargin is the time River's job timeout leaves after a task's
// Timeout and StopTimeout, so that the task's own timers always fire first
// and the final write of the run has time to finish.
const DefaultTimeoutMargin = 5 * time.Second

// DefaultLiveDelay is the default WorkerConfig.LiveDelay.
const DefaultLiveDelay = 20 * time.Millisecond

// WorkerConfig configures a [Worker]. The zero value is ready to use.
type WorkerConfig struct {
	// TimeoutMargin is added to the task's Timeout and StopTimeout to give
	// River's job timeout. Zero means DefaultTimeoutMargin. It must not be
	// negative.
	TimeoutMargin time.Duration

	// LiveDelay is how long a run goes on before its first live write to
	// the job row. A run that finishes sooner is written once, when River
	// files the attempt, so short jobs cost no extra write. Later changes
	// are written at once. Zero means DefaultLiveDelay, and a negative
	// value writes every change at once.
	LiveDelay time.Duration

	// Logger receives the errors of live writes to the job row, which do
	// not fail the run. Nil means slog.Default().
	Logger *slog.Logger

	// Options are given to every Start, after the worker's own ID, state
	// and callbacks, such as a task.WithCallbacks set of the caller's.
	Options []task.Option
}

// Worker is a River worker that runs one [task.Task] for each job of the
// kind of A, within River's client of transaction type TTx. Register it
// with river.AddWorker. It is safe for concurrent use by many jobs at once.
type Worker[TTx any, A river.JobArgs, T any] struct {
	river.WorkerDefaults[A]

	task      task.Task[T]
	timeout   time.Duration // River's job timeout; -1 for none
	liveDelay time.Duration
	logger    *slog.Logger
	options   []task.Option

	// writers holds one *liveWriter per River client that works jobs of
	// this worker, keyed by the client.
	writers sync.Map

	// pending counts what the worker still owes the job rows after their
	// attempts ended: works still running and late writes.
	pending pendingWrites
}

// WaitWorks returns once every work function that outlived its attempt,
// such as one that ignored its context and left its run UNKNOWN, has
// returned, and every write of a run's record after its attempt ended has
// finished. It returns the errors of those writes that failed since the
// last call, such as a database already closed. If ctx ends first, it
// returns an error with the number of works and writes still pending,
// which wraps context.Cause of ctx.
//
// Call it after stopping the River clients and before closing their
// database, so that a work that did return is not left recorded with
// "work_running": true when the process exits.
func (w *Worker[TTx, A, T]) WaitWorks(ctx context.Context) error {
	return w.pending.wait(ctx)
}

// NewWorker returns a worker that runs t for each job of kind A. It returns
// an error matching task.ErrInvalid if t is invalid, and an error naming the
// value if config.TimeoutMargin is negative. A nil config means the zero
// WorkerConfig.
//
// River's job timeout is t.Timeout + t.StopTimeout + TimeoutMargin. If
// either of the task's limits is zero the run has no bound, so River's job
// timeout is disabled too, and River's rescuer then never rescues the job.
func NewWorker[TTx any, A river.JobArgs, T any](t task.Task[T], config *WorkerConfig) (*Worker[TTx, A, T], error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("taskriver: %w", err)
	}
	if config == nil {
		config = &WorkerConfig{}
	}
	if config.TimeoutMargin < 0 {
		return nil, fmt.Errorf("taskriver: invalid TimeoutMargin %v: must not be negative", config.TimeoutMargin)
	}

	margin := config.TimeoutMargin
	if margin == 0 {
		margin = DefaultTimeoutMargin
	}
	timeout := time.Duration(-1)
	if t.Timeout > 0 && t.StopTimeout > 0 {
		timeout = t.Timeout + t.StopTimeout + margin
	}

	logger := config.Logger
	if logger == nil {
		logger = slog.Default()
	}
	liveDelay := config.LiveDelay
	if liveDelay == 0 {
		liveDelay = DefaultLiveDelay
	}
	return &Worker[TTx, A, T]{
		task:      t,
		timeout:   timeout,
		liveDelay: liveDelay,
		logger:    logger,
		options:   append([]task.Option(nil), config.Options...),
	}, nil
}

// Timeout returns River's job timeout for the task: its Timeout plus its
// StopTimeout plus the margin, or -1 (no timeout) when the task has no bound.
func (w *Worker[TTx, A, T]) Timeout(*river.Job[A]) time.Duration {
	return w.timeout
}

// Work runs one attempt of the job as a run of the task and returns what
// River needs to file the attempt, as the package documentation tables. It
// returns once the run has finished, even if a work function that ignores
// its context still runs. Later events of the run are still written.
func (w *Worker[TTx, A, T]) Work(ctx context.Context, job *river.Job[A]) error {
	client, err := river.ClientFromContextSafely[TTx](ctx)
	if err != nil {
		return fmt.Errorf("taskriver: job %d: %w", job.ID, err)
	}
	writer := w.writerFor(client)

	r := &liveRun[T]{
		live:    liveState{jobID: job.ID},
		writer:  writer,
		attempt: job.Attempt,
		worker:  client.ID(),
		earlier: earlierAttempts(job.JobRow),
	}
	var buf [4]task.Option
	opts := append(buf[:0],
		task.WithID(InvocationID(job.ID, job.Attempt)),
		task.WithState(job.Args),
		task.WithCallbacks(task.Callbacks[T]{Changed: r.changed, Progress: r.progressed, Ignored: r.ignored}),
	)
	opts = append(opts, w.options...)

	writer.begin(r)
	inv := w.task.Start(ctx, opts...)
	<-inv.Done()

	// The final record travels with River's own update of the attempt, so
	// that the row's state and the run's final status change in one write.
	// Any live write still queued is dropped, and one in progress is waited
	// for, so that it cannot land after the final record. The snapshot is
	// taken after close: an event before close is in it, and one after it
	// goes to the late write, which waits for River's update.
	writer.close(r)
	snapshot := inv.Snapshot()
	record, recordErr := r.record(snapshot)
	var text string
	if recordErr == nil {
		text, recordErr = record.storedText()
	}
	if recordErr != nil {
		// The run's values cannot be stored, so the record is written
		// without them and the row still shows how the run ended.
		w.logger.ErrorContext(ctx, "taskriver: final record with the run's values failed",
			slog.Int64("job_id", job.ID), slog.String("error", recordErr.Error()))
		fallback, err := fallbackRecord(r.attempt, r.worker, r.earlier, snapshot)
		if err == nil {
			text = fallback.text()
		} else {
			w.logger.ErrorContext(ctx, "taskriver: final record without the run's values failed",
				slog.Int64("job_id", job.ID), slog.String("error", err.Error()))
		}
	}
	if text != "" {
		// MetadataSet stores the record where RecordOutput would, under
		// the "output" key, but River then marshals it once, with the
		// rest of the attempt's metadata, where RecordOutput's bytes are
		// marshaled and then compacted again. A string cannot fail to
		// marshal.
		if err := river.MetadataSet(ctx, rivertype.MetadataKeyOutput, text); err != nil {
			w.logger.ErrorContext(ctx, "taskriver: set final record failed",
				slog.Int64("job_id", job.ID), slog.String("error", err.Error()))
		}
	}
	if snapshot.WorkRunning {
		// The work outlives the attempt. Its return reaches the row by a
		// late write, which WaitWorks waits for.
		w.pending.add()
		writer.onSettled(r, func() { w.pending.done(nil) })
	}
	if recordErr != nil && snapshot.Status == task.StatusCompleted {
		// The result is lost, and a caller waiting for it must not read
		// a completed job with a zero result. Running the work again would
		// most likely give a result just as large or as unmarshalable, so
		// the job is not retried.
		return river.JobCancel(fmt.Errorf("taskriver: run %s completed, but its result could not be stored: %w",
			snapshot.ID, shortError(recordErr)))
	}
	return attemptResult(snapshot)
}

// maxFallbackText bounds each error message, panic value and stack in a
// record written without the run's values, so that such a record always
// fits River's output limit: at most 2 + 16 + 2*16 texts of 64 KiB.
const maxFallbackText = 64 << 10

// withoutValues returns s with its result and late values as JSON null,
// each error message, panic value and stack cut to maxFallbackText bytes,
// and at most 16 panics, for a record whose values cannot be stored.
func withoutValues[T any](s task.Snapshot[T]) task.Snapshot[json.RawMessage] {
	out := task.Snapshot[json.RawMessage]{
		ID: s.ID, Status: s.Status, ExitCode: s.ExitCode, Result: json.RawMessage("null"),
		Err: shortError(s.Err), Cause: shortError(s.Cause), Progress: s.Progress,
		StartedAt: s.StartedAt, FinishedAt: s.FinishedAt, History: s.History,
		WorkRunning: s.WorkRunning, LateOmitted: s.LateOmitted,
	}
	for _, ig := range s.Late {
		out.Late = append(out.Late, task.Ignored[json.RawMessage]{
			Event: ig.Event, Status: ig.Status, Value: json.RawMessage("null"), Err: shortError(ig.Err), At: ig.At})
	}
	for _, p := range s.Panics[:min(len(s.Panics), 16)] {
		out.Panics = append(out.Panics, &task.PanicError{
			Value: shortText(fmt.Sprint(p.Value)), Stack: []byte(shortText(string(p.Stack)))})
	}
	return out
}

// shortText returns text cut to maxFallbackText bytes, with a note of how
// many were left out.
func shortText(text string) string {
	if len(text) <= maxFallbackText {
		return text
	}
	cut := maxFallbackText
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut-- // never split a character
	}
	return fmt.Sprintf("%s... (%d more bytes)", text[:cut], len(text)-cut)
}

// shortError returns err, or an error with its message cut by shortText
// that still matches what err matches.
func shortError(err error) error {
	if err == nil || len(err.Error()) <= maxFallbackText {
		return err
	}
	return &shortenedError{err: err}
}

// shortenedError is an error whose message is cut to maxFallbackText bytes.
// River stores the message of the error Work returns in the job row, where
// a message of hundreds of megabytes fails River's update of the attempt.
type shortenedError struct{ err error }

func (e *shortenedError) Error() string { return shortText(e.err.Error()) }
func (e *shortenedError) Unwrap() error { return e.err }

// attemptResult maps the final status of a run to what Work returns to
// River: nil completes the job, an error is retried under River's retry
// policy, and river.JobCancel ends the job cancelled, never retried. A
// very long error message is cut, as River stores it in the job row.
func attemptResult[T any](s task.Snapshot[T]) error {
	s.Err = shortError(s.Err)
	switch s.Status {
	case task.StatusCompleted:
		return nil
	case task.StatusFailed:
		return s.Err
	case task.StatusAbandoned, task.StatusUnknown:
		return river.JobCancel(s.Err)
	case task.StatusStopped:
		if s.ExitCode == task.ExitTimedOut || errors.Is(s.Cause, rivertype.ErrJobCancelledRemotely) {
			return river.JobCancel(s.Err)
		}
		// The job's context ended for a reason of River's own, such as the
		// client stopping. The error wraps that cause, which lets River put
		// a job interrupted by a stop back in the queue without using up an
		// attempt.
		return s.Err
	default:
		return fmt.Errorf("taskriver: run ended in unexpected status %q", s.Status)
	}
}

func (w *Worker[TTx, A, T]) writerFor(client *river.Client[TTx]) *liveWriter {
	if writer, ok := w.writers.Load(client); ok {
		return writer.(*liveWriter)
	}
	writer, _ := w.writers.LoadOrStore(client, newLiveWriter(riverStore[TTx]{client}, w.logger, w.liveDelay, &w.pending))
	return writer.(*liveWriter)
}

// InvocationID returns the ID the worker gives the run of one attempt of a
// job, such as "42-1" for the first attempt of job 42.
func InvocationID(jobID int64, attempt int) string {
	return strconv.FormatInt(jobID, 10) + "-" + strconv.Itoa(attempt)
}

// ArgsOf returns the job args of the run inv, which the worker gives as
// the run's state. It returns the zero A if inv was not started by a
// Worker for args of type A.
func ArgsOf[A any, T any](inv *task.Invocation[T]) A {
	args, _ := inv.State().(A)
	return args
}
