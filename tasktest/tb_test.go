package tasktest_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// fakeTB records failures instead of failing the test, so that the failures
// of the helpers themselves can be tested. Its Fatalf ends the goroutine, as
// testing.T's does.
type fakeTB struct {
	mu       sync.Mutex
	errors   []string
	fatal    string
	cleanups []func()
}

// newFakeTB returns a fakeTB whose cleanups run when t ends.
func newFakeTB(t *testing.T) *fakeTB {
	f := &fakeTB{}
	t.Cleanup(f.runCleanups)
	return f
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTB) runCleanups() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

func (f *fakeTB) errorList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errors...)
}

// fatalOf runs fn on its own goroutine, as a test body would run, and
// returns the message of the Fatalf that ended it, or "" if fn returned.
func (f *fakeTB) fatalOf(fn func()) string {
	f.mu.Lock()
	f.fatal = ""
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fatal
}
