package taskriver

import (
	"encoding/json"
	"sync/atomic"

	"github.com/riverqueue/river/rivertype"

	"github.com/tasklife/task"
)

// recordJSON is what the worker writes under the "output" key of the job's
// metadata: the snapshot of the current attempt's run, and the last record
// of each earlier attempt.
type recordJSON struct {
	Attempt int             `json:"attempt"`
	Worker  string          `json:"worker"`
	Run     json.RawMessage `json:"run"`
	Earlier []attemptJSON   `json:"earlier,omitempty"`
}

type attemptJSON struct {
	Attempt int             `json:"attempt"`
	Worker  string          `json:"worker"`
	Run     json.RawMessage `json:"run"`
}

// liveRun is one attempt's run as the live writer sees it. Its fields are
// set before the run is shared, except inv, which the first callback sets,
// and live, which the writer guards.
type liveRun[T any] struct {
	attempt int
	worker  string
	earlier []attemptJSON
	inv     atomic.Pointer[task.Invocation[T]]
	live    liveState
}

func (r *liveRun[T]) state() *liveState { return &r.live }

// current returns the current record of the run, or nil before the first
// callback.
func (r *liveRun[T]) current() ([]byte, error) {
	inv := r.inv.Load()
	if inv == nil {
		return nil, nil
	}
	return r.marshal(inv.Snapshot())
}

func (r *liveRun[T]) marshal(s task.Snapshot[T]) ([]byte, error) {
	run, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return json.Marshal(recordJSON{Attempt: r.attempt, Worker: r.worker, Run: run, Earlier: r.earlier})
}

// earlierAttempts returns the attempts recorded on the job row before this
// attempt began: the earlier ones of the last record, and the last record
// itself. An attempt that River put back in the queue without counting it,
// as it does when a client stops, appears with the same number as the next.
func earlierAttempts(job *rivertype.JobRow) []attemptJSON {
	var metadata struct {
		Output *recordJSON `json:"output"`
	}
	if err := json.Unmarshal(job.Metadata, &metadata); err != nil || metadata.Output == nil {
		return nil
	}
	last := metadata.Output
	if len(last.Run) == 0 {
		return nil
	}
	earlier := append([]attemptJSON(nil), last.Earlier...)
	return append(earlier, attemptJSON{Attempt: last.Attempt, Worker: last.Worker, Run: last.Run})
}
