// Command fetch runs an HTTP fetch as a task against an upstream service
// that hangs, and logs each transition of the run: the start, the timeout
// and the stop. Its cancel function sends the upstream a request to drop
// the job.
//
//	go run ./examples/fetch
//
// The upstream is a net/http/httptest server on 127.0.0.1, started by the
// program itself. The run times out after Timeout and ends STOPPED with
// the exit code timedOut.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tasklife/task"
)

const (
	// maxReport bounds the size of a report that a fetch reads, in bytes.
	maxReport = 1 << 20
)

// Fetcher fetches reports from an upstream service, one run per report.
// Its task pairs the fetch with a cancel function that sends the upstream a
// request to drop the report's job, since closing the connection stops only
// the client's side of the work.
type Fetcher struct {
	Client  *http.Client
	BaseURL string // the upstream's URL, such as "http://127.0.0.1:8080"

	// Timeout bounds a fetch, and StopTimeout bounds the cancel request,
	// as the fields of task.Task do.
	Timeout     time.Duration
	StopTimeout time.Duration
}

// Task returns the task that fetches the report named by the ID of each
// invocation: start it with task.WithID(reportID).
func (f *Fetcher) Task() task.Task[[]byte] {
	return task.Task[[]byte]{
		Work:        f.fetch,
		Cancel:      f.abort,
		Timeout:     f.Timeout,
		StopTimeout: f.StopTimeout,
	}
}

// fetch GETs the report. A 4xx status is a permanent failure, since the
// same request would fail again.
func (f *Fetcher) fetch(ctx context.Context, inv *task.Invocation[[]byte]) ([]byte, error) {
	resp, err := f.send(ctx, http.MethodGet, inv.ID())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusOK:
		return io.ReadAll(io.LimitReader(resp.Body, maxReport))
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return nil, task.Permanent(fmt.Errorf("fetch report %q: %s", inv.ID(), resp.Status))
	default:
		return nil, fmt.Errorf("fetch report %q: %s", inv.ID(), resp.Status)
	}
}

// abort sends the upstream a request to drop the report's job. A 2xx
// status confirms the stop, and any other makes the run UNKNOWN. The
// request may outlive the work, which returns as soon as its connection
// closes: ctx ends only when StopTimeout elapses.
func (f *Fetcher) abort(ctx context.Context, inv *task.Invocation[[]byte]) error {
	resp, err := f.send(ctx, http.MethodDelete, inv.ID())
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("cancel report %q: %s", inv.ID(), resp.Status)
	}
	return nil
}

func (f *Fetcher) send(ctx context.Context, method, id string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, f.BaseURL+"/reports/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, task.Permanent(err) // a bad BaseURL stays bad
	}
	return f.Client.Do(req)
}

// upstream is a report service that never responds to a GET: it holds each
// request until the client disconnects. A DELETE drops the report's job,
// and the upstream records its ID.
type upstream struct {
	// Set before serving: how DELETE behaves.
	dropStatus int  // the status it returns; 0 means 204 No Content
	hangDrops  bool // it hangs until the client disconnects

	mu      sync.Mutex
	deleted []string
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/reports/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		<-r.Context().Done()
	case http.MethodDelete:
		if u.hangDrops {
			<-r.Context().Done()
			return
		}
		if u.dropStatus != 0 {
			http.Error(w, "cannot drop the job", u.dropStatus)
			return
		}
		u.mu.Lock()
		u.deleted = append(u.deleted, id)
		u.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (u *upstream) deletedIDs() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.deleted...)
}

func main() {
	if err := run(context.Background(), os.Stdout, 2*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "fetch:", err)
		os.Exit(1)
	}
}

// run fetches one report from a hanging upstream with the given timeout,
// and logs the run to out.
func run(ctx context.Context, out io.Writer, timeout time.Duration) error {
	up := &upstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()

	f := &Fetcher{Client: srv.Client(), BaseURL: srv.URL, Timeout: timeout, StopTimeout: time.Second}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The work returns as soon as its connection closes, which confirms the
	// stop, so the cancel function's answer arrives late, as an ignored
	// event. The program waits for it before it shows what the upstream saw.
	answered := make(chan struct{})
	var once sync.Once
	cb := task.Callbacks[[]byte]{Ignored: func(_ *task.Invocation[[]byte], e task.Ignored[[]byte]) {
		if e.Event == task.EventConfirm || e.Event == task.EventStopFail {
			once.Do(func() { close(answered) })
		}
	}}
	inv := f.Task().Start(ctx, task.WithID("report-7"),
		task.WithCallbacks(task.LogCallbacks[[]byte](logger)), task.WithCallbacks(cb))

	_, err := inv.Wait(ctx)
	fmt.Fprintf(out, "status %s, exit code %s\n", inv.Status(), inv.ExitCode())
	if !errors.Is(err, task.ErrTimedOut) {
		return fmt.Errorf("run ended with %v, expected a timeout", err)
	}
	if !began(inv) {
		return nil // timed out before the fetch began: there is nothing to drop
	}
	select {
	case <-answered:
	case <-time.After(2 * f.StopTimeout):
		return fmt.Errorf("cancel function did not return within %v", 2*f.StopTimeout)
	}
	fmt.Fprintf(out, "upstream dropped jobs %q\n", up.deletedIDs())
	return nil
}

// began reports whether the work of inv was called, so that a cancel
// function ran when the run was stopped.
func began(inv *task.Invocation[[]byte]) bool {
	for _, tr := range inv.Snapshot().History {
		if tr.To == task.StatusStarted {
			return true
		}
	}
	return false
}
