package app

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// connLimiter caps the open client connections (MAX_CONNECTIONS). When a client connects
// at the cap, it makes room by closing the connection that has been waiting longest without
// a request in progress: idle between requests (first), or still sending its request line
// and headers. Connections whose request is being handled are never closed by it; when all
// are, the new client waits until one ends (further ones in the kernel's listen queue). So held-open connections cannot
// lock out a new client (a /health check), and the process keeps file descriptors for its
// own files.
//
// Install it with wrap (the listener) and connState (http.Server.ConnState).
type connLimiter struct {
	slots chan struct{}
	done  chan struct{} // closed with the listener

	mu      sync.Mutex
	waiting map[*limitedConn]waitState // connections without a request in progress
}

// waitState is how a connection waits: idle between requests, or new (no request yet).
type waitState struct {
	idle  bool
	since time.Time
}

func newConnLimiter(max int) *connLimiter {
	return &connLimiter{slots: make(chan struct{}, max), done: make(chan struct{}), waiting: map[*limitedConn]waitState{}}
}

// wrap returns ln with the cap applied.
func (l *connLimiter) wrap(ln net.Listener) net.Listener { return &limitedListener{Listener: ln, l: l} }

// connState is the http.Server.ConnState hook: it tells which connections wait.
func (l *connLimiter) connState(c net.Conn, state http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch state {
	case http.StateNew, http.StateIdle:
		l.waiting[lc] = waitState{idle: state == http.StateIdle, since: time.Now()}
	default: // active (a request was read), hijacked, closed
		delete(l.waiting, lc)
	}
}

// evict closes the connection that has waited longest, idle ones first, and reports
// whether it closed one. A connection that has not yet sent a request is spared for
// newGrace after it connected.
func (l *connLimiter) evict() bool {
	now := time.Now()
	l.mu.Lock()
	var oldest *limitedConn
	var best waitState
	for c, w := range l.waiting {
		if !w.idle && now.Sub(w.since) < newGrace {
			continue
		}
		if oldest == nil || w.idle && !best.idle || w.idle == best.idle && w.since.Before(best.since) {
			oldest, best = c, w
		}
	}
	delete(l.waiting, oldest)
	l.mu.Unlock()
	if oldest == nil {
		return false
	}
	oldest.Close()
	return true
}

type limitedListener struct {
	net.Listener
	l        *connLimiter
	doneOnce sync.Once
}

// Accept waits for a client, then for a slot: at the cap it closes the connection that
// has waited longest (see evict), or waits for one to end.
func (ln *limitedListener) Accept() (net.Conn, error) {
	c, err := ln.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l := ln.l
	for {
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: c, l: l}, nil
		default:
		}
		if l.evict() {
			continue // its Close gave its slot back
		}
		// Every connection has a request in progress (or has just connected): wait for
		// one to end or to go idle.
		t := time.NewTimer(evictRetry)
		select {
		case l.slots <- struct{}{}:
			t.Stop()
			return &limitedConn{Conn: c, l: l}, nil
		case <-l.done:
			t.Stop()
			c.Close()
			return nil, net.ErrClosed
		case <-t.C:
		}
	}
}

// evictRetry is how often a full listener looks again for a connection it may close;
// newGrace is how long a new connection may take to send its request before it may be
// closed for room.
const (
	evictRetry = 50 * time.Millisecond
	newGrace   = time.Second
)

func (ln *limitedListener) Close() error {
	ln.doneOnce.Do(func() { close(ln.l.done) })
	return ln.Listener.Close()
}

// CloseWrite half-closes the connection when the underlying one can (net/http sends its
// last answer this way before it closes).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// limitedConn gives its slot back when closed.
type limitedConn struct {
	net.Conn
	l         *connLimiter
	closeOnce sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.l.mu.Lock()
		delete(c.l.waiting, c)
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return err
}
