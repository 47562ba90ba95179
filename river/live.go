package taskriver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
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
	fallback() (*recordJSON, error) // the current record without the run's values
	finished() bool
	state() *liveState
}

// liveState is the part of a run that its live writer tracks. Fields
// other than jobID and due are guarded by the writer's mu.
type liveState struct {
	jobID int64

	// due is set once the live delay has passed or the attempt has
	// returned to River. Until then a change is not posted: the writer
	// reads the run's latest state when the delay ends, and River's
	// update carries it when the attempt returns first. Reading it needs
	// no lock, so the callbacks of a short run never take the writer's.
	due atomic.Bool

	delayed  bool   // in liveWriter.waiting
	delaySeq uint64 // its place in liveWriter.waiting, counted from the first run ever queued there

	queued  bool          // in liveWriter.pending
	writing bool          // a write of this run's row is in progress
	written chan struct{} // closed when the write in progress ends; nil if none waits
	closed  bool          // the attempt has returned to River
	late    bool          // a late write is running
	dirty   bool          // an event arrived after the late write read the run

	workReturned bool   // the work's return after close has been posted
	onSettled    func() // called once workReturned and no late write runs; nil if none waits
}

// waitingRun is a run in its live delay, which ends at end. Its run is nil
// once the attempt has returned, so that the writer keeps no finished run.
type waitingRun struct {
	run liveSource
	end time.Time
}

// liveWriter writes the records of running runs to their job rows, for
// one River client. A run's live delay starts when its attempt begins. All
// runs in their delay share one timer, so a short job costs no timer of
// its own.
//
// A change after the delay marks its run pending. One goroutine, started
// on demand and gone once nothing is pending, writes every pending run's
// current record in one transaction, then the runs that became pending
// meanwhile, and so on. So a run's row is written as soon as the writer is
// free. A run that changes faster than the database can take is written in
// its latest state, and its history still holds the transitions it
// skipped.
type liveWriter struct {
	store  liveStore
	logger *slog.Logger
	delay  time.Duration  // before the first write of a run; none if not positive
	owed   *pendingWrites // counts the late writes

	mu      sync.Mutex // guards the fields below and the liveState of every run
	pending []liveSource
	running bool // the flush goroutine runs

	// waiting holds the runs in their live delay, in the order their
	// delays end. The entry of a run whose attempt returned stays, without
	// the run, until its delay ends.
	waiting  []waitingRun
	firstSeq uint64      // the delaySeq of waiting[0]
	timer    *time.Timer // fires when the first waiting run's delay ends
	armed    bool        // timer is set
}

func newLiveWriter(store liveStore, logger *slog.Logger, delay time.Duration, owed *pendingWrites) *liveWriter {
	return &liveWriter{store: store, logger: logger, delay: delay, owed: owed}
}

// pendingWrites counts what a worker still owes the job rows after their
// attempts ended, and keeps the errors of the writes that failed.
type pendingWrites struct {
	mu   sync.Mutex
	n    int
	none chan struct{} // closed when n drops to 0; nil before the first add
	errs []error
}

func (p *pendingWrites) add() {
	p.mu.Lock()
	if p.n == 0 {
		p.none = make(chan struct{})
	}
	p.n++
	p.mu.Unlock()
}

func (p *pendingWrites) done(err error) {
	p.mu.Lock()
	if err != nil {
		p.errs = append(p.errs, err)
	}
	p.n--
	if p.n == 0 {
		close(p.none)
	}
	p.mu.Unlock()
}

// wait returns once nothing is pending, with the errors kept since the
// last call, or an error once ctx ends.
func (p *pendingWrites) wait(ctx context.Context) error {
	p.mu.Lock()
	n, none := p.n, p.none
	p.mu.Unlock()
	if n > 0 {
		select {
		case <-none:
		case <-ctx.Done():
			p.mu.Lock()
			n = p.n
			p.mu.Unlock()
			return fmt.Errorf("taskriver: works and late writes still pending: %d: %w", n, context.Cause(ctx))
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	err := errors.Join(p.errs...)
	p.errs = nil
	return err
}

// begin starts the live delay of r, before its run starts. With no delay,
// every change of r is written at once.
func (w *liveWriter) begin(r liveSource) {
	if w.delay <= 0 {
		r.state().due.Store(true)
		return
	}
	w.mu.Lock()
	// The time is read under the lock, so that the queue stays in the
	// order the delays end.
	st := r.state()
	st.delayed = true
	st.delaySeq = w.firstSeq + uint64(len(w.waiting))
	w.waiting = append(w.waiting, waitingRun{run: r, end: time.Now().Add(w.delay)})
	if !w.armed {
		w.armed = true
		if w.timer == nil {
			w.timer = time.AfterFunc(w.delay, w.endDelays)
		} else {
			w.timer.Reset(w.delay)
		}
	}
	w.mu.Unlock()
}

// endDelays ends the live delay of every waiting run whose delay is over,
// and queues the write of those still running.
func (w *liveWriter) endDelays() {
	now := time.Now()
	w.mu.Lock()
	start := false
	over := 0
	for _, wr := range w.waiting {
		if wr.end.After(now) {
			break
		}
		over++
		if wr.run == nil { // the attempt returned during its delay
			continue
		}
		st := wr.run.state()
		st.delayed = false
		st.due.Store(true)
		start = w.queueLocked(wr.run) || start
	}
	clear(w.waiting[:over])
	w.waiting = w.waiting[over:]
	w.firstSeq += uint64(over)
	if len(w.waiting) > 0 {
		w.timer.Reset(w.waiting[0].end.Sub(now))
	} else {
		w.armed = false
	}
	w.mu.Unlock()

	if start {
		w.flush()
	}
}

// post marks r as changed. It never blocks on the database. A change
// during the live delay is left to the end of the delay, or to River's
// update if the attempt returns first. workReturn is true when the change
// is the work's return.
func (w *liveWriter) post(r liveSource, workReturn bool) {
	st := r.state()
	if !st.due.Load() {
		return
	}
	w.mu.Lock()
	if st.closed {
		if workReturn {
			st.workReturned = true
		}
		w.postLateLocked(r)
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
func (w *liveWriter) queueLocked(r liveSource) bool {
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
// then writes the final record with the attempt's outcome. A pending write
// is dropped. A write in progress is waited for, because River's final
// update must come after it: on PostgreSQL the uncommitted write holds the
// row lock, which orders River's update after it, and on SQLite the one
// connection does the same. Changes after close take the late path.
func (w *liveWriter) close(r liveSource) {
	st := r.state()
	w.mu.Lock()
	st.closed = true
	st.due.Store(true)
	if st.delayed {
		w.waiting[st.delaySeq-w.firstSeq].run = nil
		st.delayed = false
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

func (w *liveWriter) flush() {
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

func (w *liveWriter) writeBatch(batch []liveSource) {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()

	tx, err := w.store.begin(ctx)
	if err != nil {
		w.logger.ErrorContext(ctx, "taskriver: begin live write failed",
			slog.Int("jobs", len(batch)), slog.String("error", err.Error()))
		return
	}
	defer func() { _ = tx.rollback(ctx) }()

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

		record, err := r.current()
		if err == nil && record != nil {
			err = tx.update(ctx, st.jobID, record)
		}

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
	if err := tx.commit(ctx); err != nil {
		w.logger.ErrorContext(ctx, "taskriver: commit live write failed",
			slog.Int("jobs", len(batch)), slog.String("error", err.Error()))
	}
}

// postLateLocked handles an event that arrived after the attempt returned
// to River, such as the return of a work function that ignored its
// context. Its record must land after River's final update, so a goroutine
// waits for River to file the attempt, then writes the run's latest record,
// and writes again if more events arrived meanwhile.
func (w *liveWriter) postLateLocked(r liveSource) {
	st := r.state()
	if st.late {
		st.dirty = true
		return
	}
	st.late = true
	w.owed.add()
	go w.writeLate(r)
}

func (w *liveWriter) writeLate(r liveSource) {
	st := r.state()
	ctx, cancel := context.WithTimeout(context.Background(), lateWriteTimeout)
	defer cancel()

	err := w.awaitFiled(ctx, st.jobID)
	for err == nil {
		w.mu.Lock()
		st.dirty = false
		w.mu.Unlock()

		if err = w.writeLatest(ctx, r); err != nil {
			break
		}

		w.mu.Lock()
		if !st.dirty {
			st.late = false
			w.settleLocked(st)
			w.mu.Unlock()
			w.owed.done(nil)
			return
		}
		w.mu.Unlock()
	}

	err = fmt.Errorf("taskriver: late write of job %d: %w", st.jobID, err)
	w.logger.ErrorContext(ctx, "taskriver: late write failed",
		slog.Int64("job_id", st.jobID), slog.String("error", err.Error()))
	w.mu.Lock()
	st.late = false
	w.settleLocked(st)
	w.mu.Unlock()
	w.owed.done(err)
}

// writeLatest writes the current record of r, or the record without its
// values if that one cannot be stored.
func (w *liveWriter) writeLatest(ctx context.Context, r liveSource) error {
	record, err := r.current()
	if err == nil && record != nil {
		err = w.store.update(ctx, r.state().jobID, record)
	}
	if err == nil || ctx.Err() != nil {
		return err
	}
	w.logger.ErrorContext(ctx, "taskriver: late write of the whole record failed",
		slog.Int64("job_id", r.state().jobID), slog.String("error", err.Error()))
	if record, err = r.fallback(); err != nil {
		return err
	}
	return w.store.update(ctx, r.state().jobID, record)
}

// onSettled arranges for f to be called once the work of r, which was
// still running when its attempt returned to River, has returned and its
// late write has ended. f runs with the writer's lock held.
func (w *liveWriter) onSettled(r liveSource, f func()) {
	st := r.state()
	w.mu.Lock()
	defer w.mu.Unlock()
	st.onSettled = f
	w.settleLocked(st)
}

func (w *liveWriter) settleLocked(st *liveState) {
	if st.workReturned && !st.late && st.onSettled != nil {
		f := st.onSettled
		st.onSettled = nil
		f()
	}
}

// awaitFiled returns once River has moved the job out of the running state.
//
// NOTE: A job that River put back in the queue after a client stop can be
// running again on another worker when a late write of the stopped attempt
// lands. That write then replaces the new attempt's record until the new
// attempt writes again, because nothing orders the two writes.
func (w *liveWriter) awaitFiled(ctx context.Context, jobID int64) error {
	ticker := time.NewTicker(latePollInterval)
	defer ticker.Stop()
	for {
		running, err := w.store.running(ctx, jobID)
		if err != nil || !running {
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-ticker.C:
		}
	}
}

// liveStore is the destination of the live writer's writes: the jobs of
// one River client, or a fake in this package's tests.
type liveStore interface {
	// begin starts a transaction for a batch of writes.
	begin(ctx context.Context) (liveTx, error)
	// update writes the record of job jobID outside a transaction.
	update(ctx context.Context, jobID int64, record *recordJSON) error
	// running reports whether River still has job jobID in its running
	// state.
	running(ctx context.Context, jobID int64) (bool, error)
}

// liveTx is one transaction of a liveStore.
type liveTx interface {
	update(ctx context.Context, jobID int64, record *recordJSON) error
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
}

// riverStore writes through a River client's JobUpdate, which stores the
// record as the job's output.
type riverStore[TTx any] struct {
	client *river.Client[TTx]
}

func (s riverStore[TTx]) begin(ctx context.Context) (liveTx, error) {
	driver := s.client.Driver()
	exec, err := driver.GetExecutor().Begin(ctx)
	if err != nil {
		return nil, err
	}
	return riverTx[TTx]{client: s.client, exec: exec, tx: driver.UnwrapTx(exec)}, nil
}

func (s riverStore[TTx]) update(ctx context.Context, jobID int64, record *recordJSON) error {
	_, err := s.client.JobUpdate(ctx, jobID, &river.JobUpdateParams{Output: record.text()})
	return err
}

func (s riverStore[TTx]) running(ctx context.Context, jobID int64) (bool, error) {
	job, err := s.client.JobGet(ctx, jobID)
	if err != nil {
		return false, err
	}
	return job.State == rivertype.JobStateRunning, nil
}

type riverTx[TTx any] struct {
	client *river.Client[TTx]
	exec   riverdriver.ExecutorTx
	tx     TTx
}

func (t riverTx[TTx]) update(ctx context.Context, jobID int64, record *recordJSON) error {
	_, err := t.client.JobUpdateTx(ctx, t.tx, jobID, &river.JobUpdateParams{Output: record.text()})
	return err
}

func (t riverTx[TTx]) commit(ctx context.Context) error   { return t.exec.Commit(ctx) }
func (t riverTx[TTx]) rollback(ctx context.Context) error { return t.exec.Rollback(ctx) }
