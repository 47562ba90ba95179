package bench

import (
	"context"
	"sync/atomic"

	"github.com/looplab/fsm"
	"github.com/qmuntal/stateless"
)

// Three state machines run task's transition table (see edges): a
// hand-written one on one atomic word, looplab/fsm and qmuntal/stateless.

// casCell is the outcome of one event in one status. to is statusNone when
// the table rejects the event.
type casCell struct {
	to       status
	exit     exitCode
	keepExit bool
}

var casTable [numStatuses][numEvents]casCell

func init() {
	for _, e := range edges {
		for _, from := range e.from {
			casTable[from][e.event] = casCell{to: e.to, exit: e.exit, keepExit: e.keepExit}
		}
	}
}

// casMachine keeps a status in the low byte of one word and the exit code
// in the next, so that one compare-and-swap commits both. It is the
// cheapest correct transition that a caller could write by hand.
type casMachine struct {
	word atomic.Uint32
}

func (m *casMachine) set(s status, c exitCode) {
	m.word.Store(uint32(s) | uint32(c)<<8)
}

// fire commits event e if the table allows it in the current status. It
// returns the status it found and whether it moved.
func (m *casMachine) fire(e event) (from status, ok bool) {
	for {
		old := m.word.Load()
		from = status(old)
		cell := casTable[from][e]
		if cell.to == statusNone {
			return from, false
		}
		exit := exitCode(old >> 8)
		if !cell.keepExit {
			exit = cell.exit
		}
		if m.word.CompareAndSwap(old, uint32(cell.to)|uint32(exit)<<8) {
			return from, true
		}
	}
}

// looplabEvents is task's table in looplab/fsm's form. looplab keys its
// transitions by event name and source state, so one event may lead to
// different states from different sources, as return does.
var looplabEvents = func() fsm.Events {
	events := make(fsm.Events, 0, len(edges))
	for _, e := range edges {
		src := make([]string, len(e.from))
		for i, from := range e.from {
			src[i] = from.String()
		}
		events = append(events, fsm.EventDesc{Name: e.event.String(), Src: src, Dst: e.to.String()})
	}
	return events
}()

// newLooplab returns a looplab machine in status s. onChange, when not nil,
// is called after every transition, as looplab's enter_state callback.
func newLooplab(s status, onChange func()) *fsm.FSM {
	var callbacks fsm.Callbacks
	if onChange != nil {
		callbacks = fsm.Callbacks{"enter_state": func(context.Context, *fsm.Event) { onChange() }}
	}
	return fsm.NewFSM(s.String(), looplabEvents, callbacks)
}

// newStateless returns a stateless machine configured with task's table,
// whose state lives in *state. It fires in immediate mode, which skips the
// trigger queue and its mutex. onChange, when not nil, is called after
// every transition, as an OnTransitioned callback.
func newStateless(state *status, onChange func()) *stateless.StateMachine {
	sm := stateless.NewStateMachineWithExternalStorage(
		func(context.Context) (stateless.State, error) { return *state, nil },
		func(_ context.Context, s stateless.State) error {
			*state = s.(status)
			return nil
		},
		stateless.FiringImmediate,
	)
	configureStateless(sm)
	if onChange != nil {
		sm.OnTransitioned(func(context.Context, stateless.Transition) { onChange() })
	}
	return sm
}

func configureStateless(sm *stateless.StateMachine) {
	for _, e := range edges {
		for _, from := range e.from {
			sm.Configure(from).Permit(e.event, e.to)
		}
	}
}

// statelessRunKey is the context key under which a shared stateless
// machine finds the status of the run that fires it.
type statelessRunKey struct{}

// newSharedStateless returns one stateless machine for many runs: each run
// passes a pointer to its own status in the context of FireCtx. This
// spares building a machine per run, at the cost of one context per run.
func newSharedStateless(onChange func()) *stateless.StateMachine {
	sm := stateless.NewStateMachineWithExternalStorage(
		func(ctx context.Context) (stateless.State, error) {
			return *ctx.Value(statelessRunKey{}).(*status), nil
		},
		func(ctx context.Context, s stateless.State) error {
			*ctx.Value(statelessRunKey{}).(*status) = s.(status)
			return nil
		},
		stateless.FiringImmediate,
	)
	configureStateless(sm)
	if onChange != nil {
		sm.OnTransitioned(func(context.Context, stateless.Transition) { onChange() })
	}
	return sm
}
