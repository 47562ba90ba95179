package taskriver

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

const (
	// maxBatch bounds the number of rows one live write transaction updates.
	maxBatch = 256

	// writeTimeout bounds one live write transaction.
	writeTimeout = 10 * time.Second

	// lateWriteTimeout bounds the wait for River to file an attempt before
	// an event that arrived after it is written, and that write.
	lateWriteTimeout = time.Minute

	// latePollInterval is how often a late write reads the job row while it
	// waits for River to file the attempt.
	latePollInterval = 50 * time.Millisecond
)

// liveSource is a run whose record the live writer can write.
type liveSource interface {
	current() (*recordJSON, error)
	finished() bool
	state() *liveState
}

// liveState is the part of a run that its live writer tracks. All fields
// but jobID are guarded by the writer's mu.
type liveState struct {
	jobID   int64
	queued  bool          // in liveWriter.pending
	writing bool          // a write of this run's row is in progress
	written chan struct{} // closed when the write in progress ends; nil if none waits
	closed  bool          // the attempt has returned to River
	late    bool          // a late write is running
	dirty   bool          // an event arrived after the late write read the run
	due     bool          // the live delay has passed, so a change is written at once
	delay   *time.Timer   // ends the live delay; nil before the first change
}

// liveWriter writes the records of running runs to their job rows, for
// one River client. A transition marks its run pending. One goroutine,
// started on demand and gone once nothing is pending, writes every pending
// run's current record in one transaction, then the runs that became
// pending meanwhile, and so on. So a run's row is written as soon as the
// writer is free, and a run that changes faster than the database can take
// is written in its latest state, with the transitions it skipped still in
// its history.
type liveWriter[TTx any] struct {
	client *river.Client[TTx]
	logger *slog.Logger
	delay  time.Duration // before the first write of a run; no delay if not positive

	mu      sync.Mutex // guards pending, running and the liveState of every run
	pending []liveSource
	running bool // the flush goroutine runs
}

func newLiveWriter[TTx any](client *river.Client[TTx], logger *slog.Logger, delay time.Duration) *liveWriter[TTx] {
	return &liveWriter[TTx]{client: client, logger: logger, delay: delay}
}

// post marks r as changed. It never blocks on the database. The first
// change of a run only arms a timer for the live delay, and the changes
// until it fires wait for it: a run that finishes sooner is never written
// live, which spares the database a write for each short job.
func (w *liveWriter[TTx]) post(r liveSource) {
	st := r.state()
	w.mu.Lock()
	switch {
	case st.closed:
		w.postLateLocked(r)
		w.mu.Unlock()
		return
	case !st.due && w.delay > 0:
		if st.delay == nil {
			st.delay = time.AfterFunc(w.delay, func() { w.endDelay(r) })
		}
		w.mu.Unlock()
		return
	}
	start := w.queueLocked(r)
	w.mu.Unlock()

	if start {
		go w.flush()
	}
}

func (w *liveWriter[TTx]) endDelay(r liveSource) {
	st := r.state()
	w.mu.Lock()
	st.due = true
	if st.closed {
		w.mu.Unlock()
		return
	}
	start := w.queueLocked(r)
	w.mu.Unlock()

	if start {
		go w.flush()
	}
}

// queueLocked adds r to the pending runs, and reports whether the caller
// must start the flush goroutine.
func (w *liveWriter[TTx]) queueLocked(r liveSource) bool {
	st := r.state()
	if !st.queued {
		st.queued = true
		w.pending = append(w.pending, r)
	}
	start := !w.running
	w.running = true
	return start
}

// close ends the live writes of r when its attempt returns to River, which
// then writes the final record with the attempt's outcome. A pending write,
// or one waiting for the live delay, is dropped. A write in progress is waited for, because River's final
// update must come after it: on PostgreSQL the uncommitted write holds the
// row lock, which orders River's update after it, and on SQLite the one
// connection does the same.
func (w *liveWriter[TTx]) close(r liveSource) {
	st := r.state()
	w.mu.Lock()
	st.closed = true
	if st.delay != nil {
		st.delay.Stop()
	}
	var wait chan struct{}
	if st.writing {
		if st.written == nil {
			st.written = make(chan struct{})
		}
		wait = st.written
	}
	w.mu.Unlock()

	if wait != nil {
		<-wait
	}
}

func (w *liveWriter[TTx]) flush() {
	for {
		w.mu.Lock()
		batch := make([]liveSource, 0, min(len(w.pending), maxBatch))
		rest := w.pending[:0]
		for _, r := range w.pending {
			st := r.state()
			switch {
			case st.closed || r.finished(): // see writeBatch
				st.queued = false
			case len(batch) < maxBatch:
				st.queued = false
				batch = append(batch, r)
			default:
				rest = append(rest, r)
			}
		}
		clear(w.pending[len(rest):])
		w.pending = rest
		if len(batch) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()

		w.writeBatch(batch)
	}
}

func (w *liveWriter[TTx]) writeBatch(batch []liveSource) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()

	driver := w.client.Driver()
	execTx, err := driver.GetExecutor().Begin(ctx)
	if err != nil {
		w.logger.ErrorContext(ctx, "taskriver: begin live write failed",
			slog.Int("jobs", len(batch)), slog.String("error", err.Error()))
		return
	}
	defer func() { _ = execTx.Rollback(ctx) }()
	tx := driver.UnwrapTx(execTx)

	for _, r := range batch {
		// A run that has finished is about to return to River, which
		// writes its final record. Skipping it matters under load: when
		// the CPU is short, many short runs outlast the live delay while
		// they wait to return, and writing each of them would slow River
		// down further and make still more runs outlast it.
		if r.finished() {
			continue
		}
		st := r.state()
		w.mu.Lock()
		if st.closed {
			w.mu.Unlock()
			continue
		}
		st.writing = true
		w.mu.Unlock()

		err := w.update(ctx, tx, r)

		w.mu.Lock()
		st.writing = false
		if st.written != nil {
			close(st.written)
			st.written = nil
		}
		w.mu.Unlock()
		if err != nil {
			w.logger.ErrorContext(ctx, "taskriver: live write failed",
				slog.Int64("job_id", st.jobID), slog.String("error", err.Error()))
			return
		}
	}
	if err := execTx.Commit(ctx); err != nil {
		w.logger.ErrorContext(ctx, "taskriver: commit live write failed",
			slog.Int("jobs", len(batch)), slog.String("error", err.Error()))
	}
}

func (w *liveWriter[TTx]) update(ctx context.Context, tx TTx, r liveSource) error {
	record, err := r.current()
	if err != nil || record == nil {
		return err
	}
	_, err = w.client.JobUpdateTx(ctx, tx, r.state().jobID, &river.JobUpdateParams{Output: record})
	return err
}

// postLateLocked handles an event that arrived after the attempt returned
// to River, such as the return of a work function that ignored its
// context. Its record must land after River's final update, so a goroutine
// waits for River to file the attempt, then writes the run's latest record,
// and writes again if more events arrived meanwhile.
func (w *liveWriter[TTx]) postLateLocked(r liveSource) {
	st := r.state()
	if st.late {
		st.dirty = true
		return
	}
	st.late = true
	go w.writeLate(r)
}

func (w *liveWriter[TTx]) writeLate(r liveSource) {
	st := r.state()
	ctx, cancel := context.WithTimeout(context.Background(), lateWriteTimeout)
	defer cancel()

	err := w.awaitFiled(ctx, st.jobID)
	for err == nil {
		w.mu.Lock()
		st.dirty = false
		w.mu.Unlock()

		var record *recordJSON
		if record, err = r.current(); err != nil {
			break
		}
		_, err = w.client.JobUpdate(ctx, st.jobID, &river.JobUpdateParams{Output: record})
		if err != nil {
			break
		}

		w.mu.Lock()
		if !st.dirty {
			st.late = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}

	w.logger.ErrorContext(ctx, "taskriver: late write failed",
		slog.Int64("job_id", st.jobID), slog.String("error", err.Error()))
	w.mu.Lock()
	st.late = false
	w.mu.Unlock()
}

// awaitFiled returns once River has moved the job out of the running state.
//
// NOTE: A job that River put back in the queue after a client stop can be
// running again on another worker when a late write of the stopped attempt
// lands. That write then replaces the new attempt's record until the new
// attempt writes again, because nothing orders the two writes.
func (w *liveWriter[TTx]) awaitFiled(ctx context.Context, jobID int64) error {
	ticker := time.NewTicker(latePollInterval)
	defer ticker.Stop()
	for {
		job, err := w.client.JobGet(ctx, jobID)
		if err != nil {
			return err
		}
		if job.State != rivertype.JobStateRunning {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-ticker.C:
		}
	}
}
