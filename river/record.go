package taskriver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/riverqueue/river/rivertype"

	"github.com/tasklife/task"
)

// recordJSON is the record the worker writes under the "output" key of the
// job's metadata: the current attempt and the last record of each earlier
// one.
//
// Run holds the task.Snapshot's JSON as a string, not as a nested object.
// River indexes the metadata column with a GIN index, which gets an entry
// for every key and value of a nested object: storing the snapshot as an
// object roughly doubled the PostgreSQL CPU time per job in this module's
// benchmark. Status and ExitCode repeat the snapshot's, so that SQL can
// still find runs by how they ended, such as
// metadata @> '{"output": {"status": "UNKNOWN"}}'.
type recordJSON struct {
	attemptJSON
	Earlier []attemptJSON `json:"earlier,omitempty"`
}

// attemptJSON is the record of one attempt.
type attemptJSON struct {
	Attempt  int           `json:"attempt"`
	Worker   string        `json:"worker"`
	Status   task.Status   `json:"status"`
	ExitCode task.ExitCode `json:"exit_code"`
	Run      string        `json:"run"`
}

// liveRun is one attempt's run, as the live writer tracks it. Its fields are
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
func (r *liveRun[T]) current() (*recordJSON, error) {
	inv := r.inv.Load()
	if inv == nil {
		return nil, nil
	}
	return r.record(inv.Snapshot())
}

// finished reports whether the run has reached a final status.
func (r *liveRun[T]) finished() bool {
	inv := r.inv.Load()
	return inv != nil && inv.Status().Finished()
}

// record returns the record of the run whose snapshot is s.
func (r *liveRun[T]) record(s task.Snapshot[T]) (*recordJSON, error) {
	// A direct call skips the reflection and the compaction pass that
	// json.Marshal adds around a Marshaler. Compaction took about a tenth
	// of the client's CPU time per trivial job in the benchmark's profile.
	run, err := s.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("taskriver: marshal snapshot of run %s: %w", s.ID, err)
	}
	return &recordJSON{
		attemptJSON: attemptJSON{
			Attempt:  r.attempt,
			Worker:   r.worker,
			Status:   s.Status,
			ExitCode: s.ExitCode,
			Run:      string(run),
		},
		Earlier: r.earlier,
	}, nil
}

// readRecord returns the record in the metadata of job, or nil if there is
// none. Output of another shape, recorded by some other worker, counts as
// none.
func readRecord(job *rivertype.JobRow) *recordJSON {
	// Most jobs start with no record, and decoding their metadata only to
	// find none cost a few microseconds per job. JSON could spell the key
	// with \u escapes, so metadata holding any of those is decoded.
	if !bytes.Contains(job.Metadata, []byte(`"output"`)) && !bytes.Contains(job.Metadata, []byte(`\u`)) {
		return nil
	}
	var metadata struct {
		Output *recordJSON `json:"output"`
	}
	if err := json.Unmarshal(job.Metadata, &metadata); err != nil || metadata.Output == nil ||
		metadata.Output.Run == "" {
		return nil
	}
	return metadata.Output
}

// earlierAttempts returns the attempts recorded on the job row before this
// attempt began: the earlier ones of the last record, and the last record
// itself. An attempt that River put back in the queue without counting it,
// as it does when a client stops, appears with the same number as the next.
func earlierAttempts(job *rivertype.JobRow) []attemptJSON {
	last := readRecord(job)
	if last == nil {
		return nil
	}
	return append(append([]attemptJSON(nil), last.Earlier...), last.attemptJSON)
}
