package taskriver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
	"github.com/tasklife/task/internal/syncbuf"
)

// These tests drive the live writer inside synctest bubbles, against a
// fake store, so that every write is checked against fake time.

// fakeRun is a run whose status the test sets.
type fakeRun struct {
	live   liveState
	status atomic.Uint32 // a task.Status
}

func newFakeRun(jobID int64) *fakeRun {
	r := &fakeRun{live: liveState{jobID: jobID}}
	r.set(task.StatusStarting)
	return r
}

func (r *fakeRun) set(s task.Status) { r.status.Store(uint32(s)) }

func (r *fakeRun) current() (*recordJSON, error) {
	run, err := json.Marshal(struct {
		Status task.Status `json:"status"`
	}{task.Status(r.status.Load())})
	return &recordJSON{attemptJSON: attemptJSON{Run: run}}, err
}

// recordStatus returns the status in the run of a record that a fakeRun
// made.
func recordStatus(record *recordJSON) task.Status {
	var run struct {
		Status task.Status `json:"status"`
	}
	if err := json.Unmarshal(record.Run, &run); err != nil {
		panic(err)
	}
	return run.Status
}

// fallback returns the record current returns, marked as a fallback.
func (r *fakeRun) fallback() (*recordJSON, error) {
	run, err := json.Marshal(struct {
		Status   task.Status `json:"status"`
		Fallback bool        `json:"fallback"`
	}{task.Status(r.status.Load()), true})
	return &recordJSON{attemptJSON: attemptJSON{Run: run}}, err
}

func (r *fakeRun) finished() bool    { return task.Status(r.status.Load()).Finished() }
func (r *fakeRun) state() *liveState { return &r.live }

// write is one record the fake store took.
type write struct {
	job    int64
	status task.Status
	at     time.Duration // since the bubble began
	late   bool          // written outside a transaction
}

// fakeStore records every committed write, with the fake time it was
// made. A job is running until the test files it.
type fakeStore struct {
	began time.Time

	// reject, when set, fails every update whose record it returns true
	// for.
	reject func(*recordJSON) bool

	mu      sync.Mutex
	writes  []write
	filed   map[int64]bool
	block   chan struct{} // when set, transactional updates wait for it
	updates atomic.Int32  // transactional updates begun
}

func newFakeStore() *fakeStore {
	return &fakeStore{began: time.Now(), filed: map[int64]bool{}}
}

func (s *fakeStore) begin(context.Context) (liveTx, error) { return &fakeTx{store: s}, nil }

func (s *fakeStore) update(_ context.Context, job int64, record *recordJSON) error {
	if s.reject != nil && s.reject(record) {
		return errors.New("record rejected")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, write{job: job, status: recordStatus(record), at: time.Since(s.began), late: true})
	return nil
}

func (s *fakeStore) running(_ context.Context, job int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.filed[job], nil
}

func (s *fakeStore) file(job int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.filed[job] = true
}

func (s *fakeStore) taken() []write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]write(nil), s.writes...)
}

type fakeTx struct {
	store  *fakeStore
	writes []write
}

func (t *fakeTx) update(_ context.Context, job int64, record *recordJSON) error {
	t.store.updates.Add(1)
	t.store.mu.Lock()
	block := t.store.block
	t.store.mu.Unlock()
	if block != nil {
		<-block
	}
	t.writes = append(t.writes, write{job: job, status: recordStatus(record), at: time.Since(t.store.began)})
	return nil
}

func (t *fakeTx) commit(context.Context) error {
	t.store.mu.Lock()
	defer t.store.mu.Unlock()
	t.store.writes = append(t.store.writes, t.writes...)
	return nil
}

func (t *fakeTx) rollback(context.Context) error { return nil }

const testDelay = 20 * time.Millisecond

func newTestWriter(t *testing.T, store liveStore, delay time.Duration) *liveWriter {
	var logs syncbuf.Buffer
	t.Cleanup(func() { assert.Empty(t, logs.String(), "the writer logged errors") })
	return newLiveWriter(store, slog.New(slog.NewTextHandler(&logs, nil)), delay, &pendingWrites{})
}

func TestLiveWriter_ShortRunIsNeverWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		w := newTestWriter(t, store, testDelay)
		r := newFakeRun(1)
		w.begin(r)
		w.post(r, false)
		time.Sleep(testDelay - time.Millisecond)
		r.set(task.StatusStarted)
		w.post(r, false)
		r.set(task.StatusCompleted)
		w.post(r, false)
		w.close(r)

		time.Sleep(time.Second)
		synctest.Wait()
		assert.Empty(t, store.taken())
	})
}

func TestLiveWriter_LongRunWrittenAfterDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		w := newTestWriter(t, store, testDelay)
		r := newFakeRun(1)
		w.begin(r)
		r.set(task.StatusStarted)
		w.post(r, false)

		time.Sleep(testDelay)
		synctest.Wait()
		assert.Equal(t, []write{{job: 1, status: task.StatusStarted, at: testDelay}}, store.taken(),
			"the state at the end of the delay, written then")

		time.Sleep(10 * time.Millisecond)
		r.set(task.StatusStopping)
		w.post(r, false)
		synctest.Wait()
		assert.Equal(t, []write{
			{job: 1, status: task.StatusStarted, at: testDelay},
			{job: 1, status: task.StatusStopping, at: testDelay + 10*time.Millisecond},
		}, store.taken(), "a change after the delay is written at once")

		r.set(task.StatusStopped)
		w.post(r, false)
		w.close(r)
		synctest.Wait()
		assert.Len(t, store.taken(), 2, "a finished run is left to River's update")
	})
}

func TestLiveWriter_NoDelayWritesEveryChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		w := newTestWriter(t, store, -1)
		r := newFakeRun(1)
		w.begin(r)
		w.post(r, false)
		synctest.Wait()
		time.Sleep(time.Millisecond)
		r.set(task.StatusStarted)
		w.post(r, false)
		synctest.Wait()
		assert.Equal(t, []write{
			{job: 1, status: task.StatusStarting, at: 0},
			{job: 1, status: task.StatusStarted, at: time.Millisecond},
		}, store.taken())
		w.close(r)
	})
}

// TestLiveWriter_ManyRunsShareOneTimer starts a run every millisecond,
// each lasting about 0 to 39 milliseconds, and checks that
// exactly the runs that outlast the delay are written, each once, when its
// own delay ends.
func TestLiveWriter_ManyRunsShareOneTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		w := newTestWriter(t, store, testDelay)
		const runs = 400
		var want []write
		for i := range runs {
			r := newFakeRun(int64(i))
			lasts := time.Duration(i*7%40) * time.Millisecond
			if lasts == testDelay {
				// A run that ends as its delay ends may be written or
				// not, depending on which goroutine runs first.
				lasts += time.Microsecond
			}
			began := time.Duration(i) * time.Millisecond
			if lasts > testDelay {
				want = append(want, write{job: int64(i), status: task.StatusStarted, at: began + testDelay})
			}
			w.begin(r)
			r.set(task.StatusStarted)
			w.post(r, false)
			go func() {
				time.Sleep(lasts)
				r.set(task.StatusCompleted)
				w.post(r, false)
				w.close(r)
			}()
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		assert.ElementsMatch(t, want, store.taken())
		w.mu.Lock()
		defer w.mu.Unlock()
		assert.Empty(t, w.waiting, "every delay ended")
		assert.False(t, w.armed, "no timer left set")
	})
}

func TestLiveWriter_CloseWaitsForWriteInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		store.block = make(chan struct{})
		w := newTestWriter(t, store, -1)
		r := newFakeRun(1)
		w.begin(r)
		r.set(task.StatusStarted)
		w.post(r, false)
		synctest.Wait()
		require.Equal(t, int32(1), store.updates.Load(), "the write began")

		closed := make(chan struct{})
		go func() {
			w.close(r)
			close(closed)
		}()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("close returned while a write was in progress")
		default:
		}
		close(store.block)
		<-closed
		synctest.Wait()
		assert.Len(t, store.taken(), 1)
	})
}

func TestLiveWriter_LateEventWrittenOnceFiled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		w := newTestWriter(t, store, testDelay)
		r := newFakeRun(1)
		w.begin(r)
		r.set(task.StatusUnknown)
		w.post(r, false)
		w.close(r)
		settled := settledChan(w, r)

		time.Sleep(time.Second)
		w.post(r, false)          // a late Cancel, for example: not the work's return
		r.set(task.StatusUnknown) // the work returns late: same status, new history
		w.post(r, true)
		time.Sleep(5 * latePollInterval)
		synctest.Wait()
		assert.Empty(t, store.taken(), "nothing is written while River still has the job running")
		assertOpen(t, settled, "settled before the late write")

		store.file(1)
		time.Sleep(latePollInterval)
		synctest.Wait()
		assert.Equal(t, []write{{job: 1, status: task.StatusUnknown, at: time.Second + 6*latePollInterval, late: true}},
			store.taken())
		assertClosed(t, settled, "not settled after the late write")
	})
}

func TestLiveWriter_SettledWaitsForWorkReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		w := newTestWriter(t, store, -1)
		r := newFakeRun(1)
		w.begin(r)
		r.set(task.StatusUnknown)
		w.post(r, false)
		synctest.Wait()
		w.close(r)
		store.file(1)

		settled := settledChan(w, r)
		w.post(r, false) // an event after close that is not the work's return
		synctest.Wait()
		assertOpen(t, settled, "settled while the work still runs")

		w.post(r, true)
		synctest.Wait()
		assertClosed(t, settled, "not settled once the work returned and was written")
		assertClosed(t, settledChan(w, r), "a second call sees it settled too")
	})
}

// settledChan returns a channel that w's onSettled closes for r.
func settledChan(w *liveWriter, r liveSource) <-chan struct{} {
	ch := make(chan struct{})
	w.onSettled(r, func() { close(ch) })
	return ch
}

func assertOpen(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-ch:
		t.Error(msg)
	default:
	}
}

func assertClosed(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-ch:
	default:
		t.Error(msg)
	}
}

func TestLiveWriter_ClosedRunsAreReleased(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		w := newTestWriter(t, store, time.Hour)
		for i := range 1000 {
			r := newFakeRun(int64(i))
			w.begin(r)
			r.set(task.StatusCompleted)
			w.post(r, false)
			w.close(r)
		}
		later := newFakeRun(1000)
		w.begin(later)

		w.mu.Lock()
		kept := 0
		for _, wr := range w.waiting {
			if wr.run != nil {
				kept++
			}
		}
		w.mu.Unlock()
		assert.Equal(t, 1, kept, "only the run still going is kept")

		time.Sleep(time.Hour)
		synctest.Wait()
		assert.Equal(t, []write{{job: 1000, status: task.StatusStarting, at: time.Hour}}, store.taken())
		w.close(later)
	})
}

func TestLiveWriter_SettledWaitsForLateWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		w := newTestWriter(t, store, -1)
		r := newFakeRun(1)
		w.begin(r)
		r.set(task.StatusUnknown)
		w.close(r)
		w.post(r, true) // the work returns before River files the attempt

		settled := settledChan(w, r)
		synctest.Wait()
		assertOpen(t, settled, "settled before the late write landed")

		store.file(1)
		time.Sleep(latePollInterval)
		synctest.Wait()
		assert.Len(t, store.taken(), 1)
		assertClosed(t, settled, "not settled after the late write")
	})
}

func isFallback(record *recordJSON) bool {
	var run struct{ Fallback bool }
	return json.Unmarshal(record.Run, &run) == nil && run.Fallback
}

func TestLiveWriter_LateWriteFallsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncbuf.Buffer
		owed := &pendingWrites{}
		store := newFakeStore()
		store.reject = func(record *recordJSON) bool { return !isFallback(record) }
		w := newLiveWriter(store, slog.New(slog.NewTextHandler(&logs, nil)), -1, owed)
		r := newFakeRun(1)
		w.begin(r)
		r.set(task.StatusUnknown)
		w.close(r)
		w.post(r, true)

		waited := make(chan error, 1)
		go func() { waited <- owed.wait(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-waited:
			t.Fatalf("wait returned %v before the late write", err)
		default:
		}

		store.file(1)
		time.Sleep(latePollInterval)
		synctest.Wait()
		require.NoError(t, <-waited)
		taken := store.taken()
		require.Len(t, taken, 1, "the record without values is written")
		assert.Contains(t, logs.String(), "late write of the whole record failed")
	})
}

func TestLiveWriter_FailedLateWriteIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		owed := &pendingWrites{}
		store := newFakeStore()
		store.reject = func(*recordJSON) bool { return true }
		w := newLiveWriter(store, slog.New(slog.DiscardHandler), -1, owed)
		r := newFakeRun(1)
		w.begin(r)
		r.set(task.StatusUnknown)
		w.close(r)
		store.file(1)
		w.post(r, true)

		err := owed.wait(context.Background())
		require.Error(t, err)
		assert.ErrorContains(t, err, "late write of job 1")
		assert.ErrorContains(t, err, "record rejected")
		assert.NoError(t, owed.wait(context.Background()), "an error is reported once")
	})
}
