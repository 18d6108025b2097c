package reliability

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// keepAliveHead is a request line and headers without Connection: close: the client asks
// to reuse the connection, which is what lets a server hold it. contentLength < 0 sends no
// Content-Length; chunked adds Transfer-Encoding: chunked.
func keepAliveHead(addr, method, path string, hdr map[string]string, contentLength int64, chunked bool) string {
	return strings.Replace(rawHead(addr, method, path, hdr, contentLength, chunked), "Connection: close\r\n", "", 1)
}

// heldConn is a raw connection the test keeps open.
type heldConn struct {
	conn net.Conn
	br   *bufio.Reader
}

func dialHeld(tb testing.TB, addr string) *heldConn {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { c.Close() })
	return &heldConn{conn: c, br: bufio.NewReader(c)}
}

// answer reads one response within timeout.
func (h *heldConn) answer(timeout time.Duration) (harness.Response, error) {
	_ = h.conn.SetReadDeadline(time.Now().Add(timeout))
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		return harness.Response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return harness.Response{}, err
	}
	if resp.Close { // ReadResponse moves Connection: close here
		resp.Header.Set("Connection", "close")
	}
	return harness.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// closedWithin reports whether the server closes the connection (EOF or reset) within
// timeout, with nothing more sent.
func (h *heldConn) closedWithin(timeout time.Duration) (bool, error) {
	_ = h.conn.SetReadDeadline(time.Now().Add(timeout))
	n, err := h.br.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case n > 0:
		return false, fmt.Errorf("unexpected bytes after the answer")
	case errors.As(err, &ne) && ne.Timeout():
		return false, nil
	case err != nil:
		return true, nil // EOF or connection reset
	}
	return false, nil
}

// TestUnreadBodyClosesConnection: a request that declares a body the server never reads
// (an error answer, a route that takes no body) is answered at once and its connection
// closed, instead of being held while the server waits for the body. Before, the answer
// itself did not come: Go drains up to 256 KiB of an unread body, with no deadline, before
// it writes the response header of a keep-alive connection.
func TestUnreadBodyClosesConnection(t *testing.T) {
	t.Parallel()
	s := startServer(t, "local", nil)
	addr := s.Addr()
	tests := []struct {
		name    string
		method  string
		path    string
		hdr     map[string]string
		chunked bool
		status  int
	}{
		{"health with a body", http.MethodGet, "/health", nil, false, 200},
		{"metrics with a body", http.MethodGet, "/metrics", nil, false, 200},
		{"unknown route", http.MethodGet, "/no/such/route", nil, false, 404},
		{"wrong method", http.MethodPatch, "/health", nil, false, 405},
		{"init with a wrong API key", http.MethodPost, "/upload/init", map[string]string{"X-API-Key": "wrong-key-0123456789"}, false, 401},
		{"status without an API key", http.MethodGet, "/upload/x/status", nil, false, 401},
		{"complete with a wrong API key", http.MethodPost, "/upload/x/complete", map[string]string{"X-API-Key": "nope"}, false, 401},
		{"part without a token", http.MethodPut, "/upload/x/part/0", nil, false, 401},
		{"health with a chunked body", http.MethodGet, "/health", nil, true, 200},
		{"unknown route, chunked", http.MethodPost, "/nope", nil, true, 404},
	}
	var held []time.Duration
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialHeld(t, addr)
			cl := int64(100)
			if tc.chunked {
				cl = -1
			}
			start := time.Now()
			if _, err := io.WriteString(c.conn, keepAliveHead(addr, tc.method, tc.path, tc.hdr, cl, tc.chunked)); err != nil {
				t.Fatal(err)
			}
			// The body never comes.
			r, err := c.answer(10 * time.Second)
			if err != nil {
				t.Fatalf("no answer within 10 s while the declared body is not sent: %v", err)
			}
			if r.Status != tc.status {
				t.Errorf("got %v, want %d", r, tc.status)
			}
			if r.Header.Get("Connection") != "close" {
				t.Errorf("answer without Connection: close: %v", r.Header)
			}
			closed, err := c.closedWithin(10 * time.Second)
			if err != nil || !closed {
				t.Fatalf("the server did not close the connection within 10 s of answering (%v)", err)
			}
			held = append(held, time.Since(start))
		})
	}
	if len(held) > 0 {
		t.Logf("connections with an unread body held %v at most (from the request head to the server's close), over %d cases",
			slices.Max(held).Round(time.Millisecond), len(held))
	}
}

// TestHeldConnectionsDoNotStarveHealth: with the host limited to 400 open files and
// MAX_CONNECTIONS=200, 450 connections held open by anonymous clients (150 with a declared
// body never sent, 150 stuck in their request headers, 150 idle after a request) do not
// keep /health from answering. Before, the 450 connections took every file descriptor and
// /health timed out.
func TestHeldConnectionsDoNotStarveHealth(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Fatal("this test needs prlimit (util-linux) to lower the host's open-file limit")
	}
	s := startServer(t, "local", map[string]string{"MAX_CONNECTIONS": "200"})
	pid := s.Cur().PID()
	if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(pid), "--nofile=400:400").CombinedOutput(); err != nil {
		t.Fatalf("prlimit --pid %d --nofile=400:400: %v\n%s", pid, err, out)
	}
	addr := s.Addr()
	rssBefore := rssKiB(pid)

	const each = 150
	var mu sync.Mutex
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var conns []*heldConn
	// Stuck in their headers: the request line and one header, never the blank line.
	for range each {
		c := dialHeld(t, addr)
		io.WriteString(c.conn, "GET /health HTTP/1.1\r\nHost: "+addr+"\r\n")
		conns = append(conns, c)
	}
	// Idle after one request each, kept open by the client.
	var wg sync.WaitGroup
	for range each {
		c := dialHeld(t, addr)
		conns = append(conns, c)
		wg.Go(func() {
			io.WriteString(c.conn, keepAliveHead(addr, http.MethodGet, "/health", nil, -1, false))
			if r, err := c.answer(30 * time.Second); err != nil || r.Status != 200 {
				fail("idle connection's request: %v %v", r, err)
			}
		})
	}
	wg.Wait()
	// A declared body that never comes: /health is asked while these arrive, and their
	// answers are read afterwards.
	var unread []*heldConn
	for range each {
		c := dialHeld(t, addr)
		conns = append(conns, c)
		unread = append(unread, c)
		io.WriteString(c.conn, keepAliveHead(addr, http.MethodGet, "/health", nil, 100, false))
	}
	for _, f := range failures {
		t.Error(f)
	}
	rssHeld := rssKiB(pid)

	// While the client still holds all 450 connections open, /health answers.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var took []time.Duration
	for i := range 20 {
		start := time.Now()
		resp, err := client.Get(s.URL("/health"))
		if err != nil {
			t.Fatalf("GET /health %d with 450 connections held: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET /health %d with 450 connections held: %d", i, resp.StatusCode)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	for i, c := range unread {
		if r, err := c.answer(10 * time.Second); err != nil || r.Status != 200 {
			t.Errorf("unread-body request %d: %v %v, want 200 (and the connection closed)", i, r, err)
			break
		}
	}
	open := 0
	for _, c := range conns {
		if closed, _ := c.closedWithin(time.Millisecond); !closed {
			open++
		}
	}
	t.Logf("/health with 450 connections held (host: 400 open files, MAX_CONNECTIONS=200): p50 %v, max %v over %d requests; "+
		"%d of the 450 still open at the end; host RSS %d KiB before, %d KiB while held",
		took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), len(took), open, rssBefore, rssHeld)
	if strings.Contains(s.Logs(), "too many open files") {
		t.Errorf("the host ran out of file descriptors:\n%s", harness.Tail(s.Cur().LogPath))
	}
}

// rssKiB is the resident set size of process pid (-1 if unknown).
func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return -1
}
