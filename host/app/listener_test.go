package app

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// serve runs handler behind a connLimiter of max connections and returns its address.
func serve(t *testing.T, max int, handler http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := newConnLimiter(max)
	srv := &http.Server{Handler: handler, ConnState: lim.connState, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Minute}
	go srv.Serve(lim.wrap(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends GET path on c and reads the answer within 5 s.
func get(c net.Conn, path string) (int, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// closedByServer reports whether the server closed c (EOF within 5 s).
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return err == io.EOF
}

// stillOpen reports whether c stays open for 200 ms.
func stillOpen(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// At the cap, a new client is served: an idle connection is closed for it first, then one
// stuck in its request headers (once past newGrace).
func TestConnLimiterEvictsWaitingConnections(t *testing.T) {
	addr := serve(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	idle := dial(t, addr)
	if code, err := get(idle, "/"); err != nil || code != 200 {
		t.Fatalf("first request: %d %v", code, err)
	}
	slow := dial(t, addr)
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\n") // headers never end
	time.Sleep(newGrace + 200*time.Millisecond)
	fresh := dial(t, addr)
	if code, err := get(fresh, "/"); err != nil || code != 200 {
		t.Fatalf("a new client at the cap: %d %v", code, err)
	}
	if !closedByServer(idle) {
		t.Fatal("the idle connection was not closed to make room")
	}
	if !stillOpen(slow) {
		t.Fatal("the connection in its headers was closed although an idle one could go")
	}
	// fresh is idle now, slow is past its grace: the idle one goes first again.
	fresh2 := dial(t, addr)
	if code, err := get(fresh2, "/"); err != nil || code != 200 {
		t.Fatalf("another new client at the cap: %d %v", code, err)
	}
	if !closedByServer(fresh) {
		t.Fatal("the idle connection was not closed to make room")
	}

	one := serve(t, 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	stuck := dial(t, one)
	io.WriteString(stuck, "GET / HTTP/1.1\r\nHost: x\r\n")
	time.Sleep(newGrace + 200*time.Millisecond)
	next := dial(t, one)
	if code, err := get(next, "/"); err != nil || code != 200 {
		t.Fatalf("a new client behind a connection stuck in its headers: %d %v", code, err)
	}
	if !closedByServer(stuck) {
		t.Fatal("the connection stuck in its headers was not closed to make room")
	}
}

// Connections with a request in progress are never closed for room: a new client waits
// until one ends.
func TestConnLimiterWaitsForActiveConnections(t *testing.T) {
	release := make(chan struct{})
	addr := serve(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			<-release
		}
	}))
	var busy []net.Conn
	for range 2 {
		c := dial(t, addr)
		fmt.Fprintf(c, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
		busy = append(busy, c)
	}
	time.Sleep(100 * time.Millisecond)
	waiting := dial(t, addr) // the kernel accepts; the server does not yet
	done := make(chan error, 1)
	go func() {
		code, err := get(waiting, "/")
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d", code)
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a third connection was served while two requests held the cap of 2: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the waiting client after a request ended: %v", err)
	}
	for _, c := range busy {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("a request in progress was cut: %v", err)
		}
	}
}
