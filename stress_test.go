package task_test

import (
	"context"
	"errors"
	"flag"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
)

var (
	stressRuns = flag.Int("stress.runs", 10_000,
		"number of runs TestStress_ManyRunsAtOnce starts at once (1,000 with -short)")
	stressSeed = flag.Uint64("stress.seed", 0, "seed of the stress tests' random choices; 0 picks one")
)

// stressRand returns the random source of a stress test and logs its
// seed, so that -stress.seed can repeat a failure.
func stressRand(t *testing.T) *rand.Rand {
	seed := *stressSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("-stress.seed=%d", seed)
	return rand.New(rand.NewPCG(seed, seed))
}

// stressPlan is one run of TestStress_ManyRunsAtOnce. Its durations are
// whole milliseconds from a small range, so that many runs have two
// events due at the same instant, which race for real.
type stressPlan struct {
	work    time.Duration // when the work returns unless its context ends first
	timeout time.Duration // Task.Timeout; 0 for none
	cancel  time.Duration // when a timer calls Cancel; 0 for never
	confirm bool          // the task has a cancel function that confirms at once
}

// outcomes returns the exit codes the run may end with: that of each
// event due first.
func (p stressPlan) outcomes() []task.ExitCode {
	first := p.work
	if p.timeout > 0 {
		first = min(first, p.timeout)
	}
	if p.cancel > 0 {
		first = min(first, p.cancel)
	}
	var codes []task.ExitCode
	if p.work == first {
		codes = append(codes, task.ExitCompleted)
	}
	if p.timeout == first {
		codes = append(codes, task.ExitTimedOut)
	}
	if p.cancel == first {
		codes = append(codes, task.ExitCanceled)
	}
	return codes
}

func TestStress_ManyRunsAtOnce(t *testing.T) {
	runs := *stressRuns
	if testing.Short() {
		runs = min(runs, 1_000)
	}
	random := stressRand(t)
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+random.IntN(hi-lo+1)) * time.Millisecond }
	plans := make([]stressPlan, runs)
	for i := range plans {
		p := stressPlan{work: ms(1, 20), confirm: random.IntN(2) == 0}
		if random.IntN(3) > 0 {
			p.timeout = ms(1, 20)
		}
		if random.IntN(3) > 0 {
			p.cancel = ms(1, 20)
		}
		plans[i] = p
	}

	baseline := heapInUse()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var (
		peak  uint64
		codes map[task.ExitCode]int
	)
	began := time.Now()
	synctest.Test(t, func(t *testing.T) {
		peak, codes = runStress(t, plans)
	})
	elapsed := time.Since(began)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	t.Logf("%d runs at once: %v wall time, peak heap %.1f MiB above a baseline of %.1f MiB, %d bytes allocated per run",
		runs, elapsed.Round(time.Millisecond), float64(peak-baseline)/(1<<20), float64(baseline)/(1<<20),
		(after.TotalAlloc-before.TotalAlloc)/uint64(runs))
	t.Logf("exit codes: %v", codes)
}

// runStress starts every planned run at once, waits for all of them and
// checks each outcome. It returns the peak heap in use that it saw and
// how many runs ended with each exit code.
func runStress(t *testing.T, plans []stressPlan) (uint64, map[task.ExitCode]int) {
	var changed atomic.Int64
	counting := task.WithCallbacks(task.Callbacks[int]{
		Changed: func(*task.Invocation[int], task.Transition) { changed.Add(1) },
	})
	work := func(d time.Duration) task.WorkFunc[int] {
		return func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
			select {
			case <-time.After(d):
				return int(d), nil
			case <-ctx.Done():
				return 0, context.Cause(ctx)
			}
		}
	}
	confirm := func(context.Context, *task.Invocation[int]) error { return nil }

	invs := make([]*task.Invocation[int], len(plans))
	for i, p := range plans {
		tk := task.Task[int]{Work: work(p.work), Timeout: p.timeout, StopTimeout: time.Second}
		if p.confirm {
			tk.Cancel = confirm
		}
		inv := tk.Start(context.Background(), counting)
		if p.cancel > 0 {
			time.AfterFunc(p.cancel, func() { inv.Cancel(errors.New("stress")) })
		}
		invs[i] = inv
	}

	// Every run is parked now, and the heap is near its peak. A sampler
	// reads it again every millisecond of the bubble's clock.
	peak := heapNow()
	sampled := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				peak = max(peak, heapNow())
			}
		}
	}()

	transitions := 0
	codes := map[task.ExitCode]int{}
	for i, inv := range invs {
		v, err := inv.Wait(context.Background())
		s := inv.Snapshot()
		transitions += len(s.History)
		require.NoError(t, checkPath(s.History), "run %d", i)
		require.Contains(t, plans[i].outcomes(), s.ExitCode, "run %d %+v", i, plans[i])
		codes[s.ExitCode]++
		switch s.ExitCode {
		case task.ExitCompleted:
			require.NoError(t, err, "run %d", i)
			require.Equal(t, int(plans[i].work), v, "run %d", i)
		case task.ExitTimedOut:
			require.Equal(t, task.StatusStopped, s.Status, "run %d", i)
			require.ErrorIs(t, err, task.ErrTimedOut, "run %d", i)
		case task.ExitCanceled:
			require.Equal(t, task.StatusStopped, s.Status, "run %d", i)
			require.ErrorIs(t, err, task.ErrCanceled, "run %d", i)
		}
	}
	close(stop)
	<-sampled

	// The cancel timers of runs that had finished fire too, and are
	// ignored.
	time.Sleep(time.Minute)
	synctest.Wait()
	assert.Equal(t, int64(transitions), changed.Load(), "Changed callbacks, one per transition")
	assert.Empty(t, libraryGoroutines(), "goroutines of the library left running")
	return peak, codes
}

func heapNow() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestStress_OneRunManyCallers races many goroutines calling Cancel,
// Abandon, Wait and Snapshot on one run whose work returns at the same
// moment, many times, and checks that every reader saw one history.
func TestStress_OneRunManyCallers(t *testing.T) {
	const (
		rounds  = 200
		callers = 32
	)
	random := stressRand(t)
	for round := range rounds {
		release := make(chan struct{})
		fails := random.IntN(2) == 0
		inv := task.Task[int]{Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			if fails {
				return 0, errors.New("work failed")
			}
			return 1, nil
		}}.Start(context.Background())

		var (
			mu        sync.Mutex
			snapshots []task.Snapshot[int]
			outcomes  []error
			cancels   atomic.Int32
			abandons  atomic.Int32
		)
		ops := make([]int, callers)
		for i := range ops {
			ops[i] = random.IntN(4)
		}
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, op := range ops {
			wg.Go(func() {
				<-start
				switch op {
				case 0:
					if inv.Cancel(nil) {
						cancels.Add(1)
					}
				case 1:
					if inv.Abandon(nil) {
						abandons.Add(1)
					}
				case 2:
					_, err := inv.Wait(context.Background())
					mu.Lock()
					outcomes = append(outcomes, err)
					mu.Unlock()
				}
				s := inv.Snapshot()
				mu.Lock()
				snapshots = append(snapshots, s)
				mu.Unlock()
			})
		}
		close(start)
		close(release)
		wg.Wait()
		_, _ = waitDone(t, inv)
		// A last Abandon, accepted or not, so that a run's error is often
		// wrapped after some callers read it.
		inv.Abandon(nil)

		final := inv.Snapshot()
		require.NoError(t, checkPath(final.History), "round %d", round)
		assert.LessOrEqual(t, cancels.Load(), int32(1), "round %d: Cancel calls that returned true", round)
		assert.LessOrEqual(t, abandons.Load(), int32(1), "round %d: Abandon calls that returned true", round)
		cancelled := slices.ContainsFunc(final.History, func(tr task.Transition) bool {
			return tr.Event == task.EventCancel
		})
		assert.Equal(t, cancelled, cancels.Load() == 1, "round %d: a Cancel won if and only if one began the stop", round)
		for _, s := range snapshots {
			require.LessOrEqual(t, len(s.History), len(final.History), "round %d", round)
			assert.Equal(t, final.History[:len(s.History)], s.History, "round %d: snapshot history is a prefix", round)
		}
		for _, err := range outcomes {
			if err != final.Err {
				// Wait returned before an Abandon wrapped the run's error.
				assert.ErrorIs(t, final.Err, err, "round %d", round)
			}
		}
	}
}
