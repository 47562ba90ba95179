package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasklife/task"
	"github.com/tasklife/task/internal/syncbuf"
	"github.com/tasklife/task/tasktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// memListener is a net.Listener whose connections are in-memory net.Pipe
// pairs. An HTTP server and client on loopback sockets cannot run in a
// synctest bubble, because a goroutine blocked on a socket is not durably
// blocked and so the fake clock never advances. Pipes are made of channels,
// which the bubble understands.
type memListener struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

// dial is the client's DialContext: it hands the server's end of a new
// pipe to Accept.
func (l *memListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "upstream.test" }

// serveInMemory serves up with httptest over a memListener and returns a
// Fetcher that reaches it. Call it inside the test's bubble; the server and
// the client's connections close when the test ends.
func serveInMemory(t *testing.T, up *upstream) *Fetcher {
	l := newMemListener()
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: up}}
	srv.Start()
	transport := &http.Transport{DialContext: l.dial}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		srv.Close()
	})
	return &Fetcher{Client: &http.Client{Transport: transport}, BaseURL: srv.URL,
		Timeout: 30 * time.Second, StopTimeout: 10 * time.Second}
}

func TestFetcher_UpstreamHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{}
		f := serveInMemory(t, up)
		var rec tasktest.Recorder[[]byte]

		start := time.Now()
		inv := f.Task().Start(context.Background(), task.WithID("report-7"),
			task.WithCallbacks(rec.Callbacks()))
		_, err := inv.Wait(context.Background())

		assert.ErrorIs(t, err, task.ErrTimedOut)
		assert.Equal(t, 30*time.Second, time.Since(start), "fake time")
		rec.RequireStatuses(t, task.StatusStarting, task.StatusStarted, task.StatusStopping,
			task.StatusStopped)
		rec.RequireExitCode(t, task.ExitTimedOut)

		// The request to drop the job outlives the fetch, which returned as
		// soon as its connection closed.
		synctest.Wait()
		assert.Equal(t, []string{"report-7"}, up.deletedIDs())
	})
}

func TestFetcher_CancelEscalation(t *testing.T) {
	cases := []struct {
		name     string
		upstream *upstream
		final    task.Status
		code     task.ExitCode
		elapsed  time.Duration
		deleted  []string
	}{
		{"dropped job stops the run", &upstream{},
			task.StatusStopped, task.ExitTimedOut, 30 * time.Second, []string{"report-7"}},
		{"failed drop ends unknown", &upstream{dropStatus: http.StatusInternalServerError},
			task.StatusUnknown, task.ExitCancelFailed, 30 * time.Second, nil},
		{"hung drop ends unknown", &upstream{hangDrops: true},
			task.StatusUnknown, task.ExitCancelTimedOut, 40 * time.Second, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := serveInMemory(t, c.upstream)
				// A fetch stuck where its context cannot reach: only the
				// upstream can stop the job.
				work := tasktest.NewWork[[]byte](t)
				work.Hang()
				tk := f.Task()
				tk.Work = work.Run
				var rec tasktest.Recorder[[]byte]

				start := time.Now()
				inv := tk.Start(context.Background(), task.WithID("report-7"),
					task.WithCallbacks(rec.Callbacks()))
				<-inv.Done()

				assert.Equal(t, c.elapsed, time.Since(start), "fake time")
				rec.RequireStatuses(t, task.StatusStarting, task.StatusStarted, task.StatusStopping, c.final)
				rec.RequireExitCode(t, c.code)
				assert.Equal(t, c.deleted, c.upstream.deletedIDs())
			})
		})
	}
}

func TestFetcher_NotFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := serveInMemory(t, &upstream{})
		f.BaseURL += "/v0" // a path the upstream does not serve
		var rec tasktest.Recorder[[]byte]

		inv := f.Task().Start(context.Background(), task.WithID("report-7"),
			task.WithCallbacks(rec.Callbacks()))
		_, err := inv.Wait(context.Background())

		assert.ErrorIs(t, err, task.ErrAbandoned)
		assert.ErrorContains(t, err, `fetch report "report-7": 404 Not Found`)
		rec.RequireStatuses(t, task.StatusStarting, task.StatusStarted, task.StatusAbandoned)
		rec.RequireExitCode(t, task.ExitFailed)
	})
}

// TestFetcher_Loopback runs the fetch over real sockets on 127.0.0.1, in
// real time, so it cannot use a bubble. It waits on the run alone, and the
// deadline of ctx only bounds a hang.
func TestFetcher_Loopback(t *testing.T) {
	up := &upstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()
	f := &Fetcher{Client: srv.Client(), BaseURL: srv.URL,
		Timeout: 200 * time.Millisecond, StopTimeout: 5 * time.Second}
	var rec tasktest.Recorder[[]byte]

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inv := f.Task().Start(ctx, task.WithID("report-7"), task.WithCallbacks(rec.Callbacks()))
	_, err := inv.Wait(ctx)

	require.ErrorIs(t, err, task.ErrTimedOut)
	rec.RequireStatuses(t, task.StatusStarting, task.StatusStarted, task.StatusStopping,
		task.StatusStopped)
	rec.RequireExitCode(t, task.ExitTimedOut)
}

func TestRun(t *testing.T) {
	var out syncbuf.Buffer
	require.NoError(t, run(context.Background(), &out, 50*time.Millisecond))
	assert.Contains(t, out.String(), `msg="task transition" invocation_id=report-7 status=STOPPING`)
	assert.Contains(t, out.String(), "status STOPPED, exit code timedOut\n")
}
