package api

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/tus"
)

// DefaultBodyIdleTimeout is how long a request body may send nothing before its connection
// is closed (BODY_IDLE_TIMEOUT).
const DefaultBodyIdleTimeout = 60 * time.Second

// idleBody is a request body whose connection has a read deadline, as tusd's bodyReader
// does: each read may wait for the client at most idle; a read that waits longer fails,
// and the answer closes the connection. The deadline is set as each read starts, so only
// the client's silence counts, never the handler's own pauses between reads (a part
// written in place waits for the backend's file or the digest before its first read, a
// part write stops reading while the disk takes its buffers), during which the client's
// bytes may be waiting in the socket all along. Once the body is read to its end the
// deadline is lifted, so that a handler that works long after reading (a complete, an
// fsync) is not cut.
type idleBody struct {
	r        io.ReadCloser
	rc       *http.ResponseController
	idle     time.Duration
	eof      atomic.Bool
	timedOut atomic.Bool
	// cut, if set, is a flag that ends reads at once (a newer write of the part took
	// over, see interruptible): checked after each read arms the deadline, so that arming
	// it never undoes a cut made just before.
	cut *atomic.Bool
}

// watchBody puts an idle deadline on r's body and returns it; nil when r has no body.
func watchBody(w http.ResponseWriter, r *http.Request, idle time.Duration) *idleBody {
	if r.Body == nil || r.Body == http.NoBody || (r.ContentLength == 0 && len(r.TransferEncoding) == 0) {
		return nil
	}
	b := &idleBody{r: r.Body, rc: http.NewResponseController(w), idle: idle}
	_ = b.rc.SetReadDeadline(time.Now().Add(idle)) // not supported (tests' recorders): no deadline
	r.Body = b
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	if b.cut != nil && b.cut.Load() {
		_ = b.rc.SetReadDeadline(time.Now())
	}
	n, err := b.r.Read(p)
	switch {
	case err == io.EOF:
		b.eof.Store(true)
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil:
		if isTimeout(err) {
			b.timedOut.Store(true)
		}
	}
	return n, err
}

func (b *idleBody) Close() error { return b.r.Close() }

// unread reports whether the body may still hold bytes nobody read: the server would then
// read them, with no deadline, before the next request on the connection.
func (b *idleBody) unread() bool { return b != nil && !b.eof.Load() }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// bodyError replaces err by body_timeout when the request body stalled: whatever a
// handler made of the failed read (a short part, a broken JSON body), the client is told
// what happened.
func (s *Server) bodyError(r *http.Request, err error) error {
	if host.ErrorCode(err) == host.CodePartSuperseded {
		return err // the deadline was a newer write of the part cutting this one
	}
	if b, ok := r.Body.(*idleBody); ok && err != nil && b.timedOut.Load() {
		kept := "nothing was stored"
		if strings.HasPrefix(r.URL.Path, tus.Path) {
			kept = "the bytes received before are kept: HEAD for the offset, then resume" // docs/tus.md
		}
		return host.Wrap(err, host.CodeBodyTimeout,
			"no bytes of the request body arrived for "+b.idle.String()+"; the connection is closed and "+kept)
	}
	return err
}
