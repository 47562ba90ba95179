package tasktest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// errTestEnded is the error that a blocked work or cancel function returns
// when the test ends before any step released it.
var errTestEnded = errors.New("tasktest: released because the test ended")

type stepKind uint8

const (
	stepReturn stepKind = iota + 1 // return a value and a nil error
	stepFail
	stepPermanent
	stepPanic
	stepGoexit
	stepProgress // the only step after which the function goes on waiting
)

// step is one command for a scripted function. R is what the function
// returns besides its error: the work's T, or struct{} for a cancel
// function.
type step[R any] struct {
	kind        stepKind
	value       R
	err         error
	panicValue  any
	done, total int64
	text        string // the call that queued the step, such as `Return("ok")`
}

// script is the engine shared by Work and Cancel: a queue of steps that the
// scripted function runs in order, one call of the function, and a release
// at the end of the test.
type script[R any] struct {
	t    TB
	name string // "Work" or "Cancel", for messages

	// Made at construction, inside the test's synctest bubble if any.
	begun chan struct{} // closed when the function is called
	wake  chan struct{} // holds a token when a step was queued
	end   chan struct{} // closed when the test ends

	// mu guards the fields below.
	mu        sync.Mutex
	steps     []step[R]
	ignoreCtx bool
	hang      bool
	called    bool
	returned  string // the step or reason that ended the function, such as `Return("ok")`; empty while it runs
}

func newScript[R any](t TB, name string) *script[R] {
	if t == nil {
		panic("tasktest: New" + name + "(nil): pass the test's t")
	}
	s := &script[R]{
		t:     t,
		name:  name,
		begun: make(chan struct{}),
		wake:  make(chan struct{}, 1),
		end:   make(chan struct{}),
	}
	t.Cleanup(s.cleanup)
	return s
}

// cleanup releases a function still blocked, so that no goroutine outlives
// the test, and reports the steps that can never run. A function still
// running takes its queued steps before it checks for the end.
func (s *script[R]) cleanup() {
	close(s.end)
	s.mu.Lock()
	pending := s.steps
	called := s.called
	running := called && s.returned == ""
	s.mu.Unlock()
	if len(pending) == 0 || running {
		return
	}
	var texts []string
	for _, st := range pending {
		texts = append(texts, st.text)
	}
	reason := "the run ended it before it reached them"
	if !called {
		reason = "it was never called; check that the task uses " + s.name + ".Run"
	}
	count := "a step"
	if len(pending) > 1 {
		count = strconv.Itoa(len(pending)) + " steps"
	}
	s.t.Errorf("tasktest: %s: %s never ran, %v: %s", s.name, count, texts, reason)
}

// enqueue adds st to the steps the function runs in order, and fails the
// test if the function can never run it.
func (s *script[R]) enqueue(st step[R]) {
	s.t.Helper()
	s.mu.Lock()
	var problem string
	switch {
	case s.returned != "":
		problem = fmt.Sprintf("the %s is not blocked: it already ended with %s, so nothing runs this step",
			s.subject(), s.returned)
	case s.hang:
		problem = fmt.Sprintf("the %s hangs since Hang was called, and only the end of the test releases it",
			s.subject())
	case len(s.steps) > 0 && s.steps[len(s.steps)-1].kind != stepProgress:
		problem = fmt.Sprintf("%s is already queued, and the %s ends only once",
			s.steps[len(s.steps)-1].text, s.subject())
	default:
		s.steps = append(s.steps, st)
	}
	s.mu.Unlock()
	if problem != "" {
		s.t.Fatalf("tasktest: %s.%s: %s", s.name, st.text, problem)
		return
	}
	s.signal()
}

func (s *script[R]) signal() {
	select {
	case s.wake <- struct{}{}:
	default: // a token is already there
	}
}

func (s *script[R]) subject() string {
	if s.name == "Cancel" {
		return "cancel function"
	}
	return "work function"
}

func (s *script[R]) setIgnoreContext() {
	s.mu.Lock()
	s.ignoreCtx = true
	s.mu.Unlock()
}

func (s *script[R]) setHang(method string) {
	s.t.Helper()
	s.mu.Lock()
	var problem string
	switch {
	case s.returned != "":
		problem = fmt.Sprintf("the %s already ended with %s", s.subject(), s.returned)
	case len(s.steps) > 0:
		problem = fmt.Sprintf("steps are queued for the %s, starting with %s", s.subject(), s.steps[0].text)
	default:
		s.hang, s.ignoreCtx = true, true
	}
	s.mu.Unlock()
	if problem != "" {
		s.t.Fatalf("tasktest: %s.%s: %s", s.name, method, problem)
	}
}

// waitBegun blocks until the function has been called.
func (s *script[R]) waitBegun(method string) {
	s.t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	select {
	case <-s.begun:
	case <-timer.C:
		s.t.Fatalf("tasktest: %s.%s: the %s was not called within %v: check that the task uses %s.Run, "+
			"and that the run did not end before it needed the %s", s.name, method, s.subject(),
			waitLimit, s.name, s.subject())
	}
}

// run is the body of the scripted function. It blocks until a step ends it,
// its context ends (unless it ignores the context) or the test ends.
// progress reports a progress step.
func (s *script[R]) run(ctx context.Context, progress func(done, total int64)) (R, error) {
	var zero R
	s.mu.Lock()
	if s.called {
		s.mu.Unlock()
		s.t.Errorf("tasktest: %s.Run called a second time: a %s serves one run; make one per Start",
			s.name, s.name)
		return zero, fmt.Errorf("tasktest: %s.Run called a second time", s.name)
	}
	s.called = true
	s.mu.Unlock()
	close(s.begun)

	for {
		s.mu.Lock()
		if len(s.steps) > 0 {
			st := s.steps[0]
			s.steps = s.steps[1:]
			if st.kind == stepProgress {
				s.mu.Unlock()
				progress(st.done, st.total)
				continue
			}
			s.returned = st.text
			s.mu.Unlock()
			return s.perform(st)
		}
		var ctxDone <-chan struct{}
		if !s.ignoreCtx {
			ctxDone = ctx.Done()
		}
		s.mu.Unlock()

		// A step queued before the context or the test ended still wins, so
		// the outcome does not depend on which channel select picks.
		select {
		case <-s.wake:
		case <-ctxDone:
			cause := context.Cause(ctx)
			if s.endUnlessQueued("the context's cause: "+strconv.Quote(cause.Error()), true) {
				return zero, cause
			}
		case <-s.end:
			if s.endUnlessQueued("the end of the test", false) {
				return zero, errTestEnded
			}
		}
	}
}

// endUnlessQueued records that the function ends for reason and reports
// true, unless a step is queued, which the function runs instead, or the
// end of the context is the reason and the function now ignores it.
func (s *script[R]) endUnlessQueued(reason string, contextEnded bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.steps) > 0 || (contextEnded && s.ignoreCtx) {
		return false
	}
	s.returned = reason
	return true
}

func (s *script[R]) perform(st step[R]) (R, error) {
	var zero R
	switch st.kind {
	case stepReturn:
		return st.value, nil
	case stepPanic:
		panic(st.panicValue)
	case stepGoexit:
		runtime.Goexit()
	}
	return zero, st.err // stepFail, and stepPermanent with err already wrapped
}

// quote formats v for a message: strings and byte slices quoted, other
// values with %v.
func quote(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case []byte:
		return strconv.Quote(string(v))
	}
	return fmt.Sprintf("%v", v)
}
