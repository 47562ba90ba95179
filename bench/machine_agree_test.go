package bench

import (
	"context"
	"testing"
)

// TestMachines_AgreeWithTable checks that the three anchor machines accept
// and reject the same events as task's table, so that the benchmarks time
// the same state machine three ways.
func TestMachines_AgreeWithTable(t *testing.T) {
	ctx := context.Background()
	for from := statusNone; from < numStatuses; from++ {
		for e := event(0); e < numEvents; e++ {
			want := casTable[from][e].to

			var cas casMachine
			cas.set(from, exitUnknown)
			_, casOK := cas.fire(e)
			if got := status(cas.word.Load()); casOK != (want != statusNone) || casOK && got != want {
				t.Errorf("cas: %v in %v: moved %v to %v, want %v", e, from, casOK, got, want)
			}

			looplab := newLooplab(from, nil)
			err := looplab.Event(ctx, e.String())
			if (err == nil) != (want != statusNone) {
				t.Errorf("looplab: %v in %v: error %v, want a move to %v", e, from, err, want)
			} else if err == nil && looplab.Current() != want.String() {
				t.Errorf("looplab: %v in %v: moved to %v, want %v", e, from, looplab.Current(), want)
			}

			state := from
			sm := newStateless(&state, nil)
			err = sm.Fire(e)
			if (err == nil) != (want != statusNone) {
				t.Errorf("stateless: %v in %v: error %v, want a move to %v", e, from, err, want)
			} else if err == nil && state != want {
				t.Errorf("stateless: %v in %v: moved to %v, want %v", e, from, state, want)
			}
		}
	}
}
