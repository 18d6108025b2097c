package tus

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// Errors of body reads.
var (
	errTakenOver = errors.New("a newer PATCH of the upload took over")
	errIdle      = errors.New("the request body sent nothing for too long")
)

// body is a PATCH body with an idle timeout (each read must get bytes within idle) that a
// newer PATCH of the same upload can cut (interrupt).
type body struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration

	mu  sync.Mutex
	cut bool
	n   int64 // bytes read
}

func newBody(w http.ResponseWriter, r *http.Request, idle time.Duration) *body {
	return &body{r: r.Body, rc: http.NewResponseController(w), idle: idle}
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.cut {
		b.mu.Unlock()
		return 0, errTakenOver
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.idle))
	b.mu.Unlock()
	n, err := b.r.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += int64(n)
	switch {
	case err == nil || errors.Is(err, io.EOF):
	case b.cut:
		err = errTakenOver
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = errIdle
	}
	return n, err
}

// interrupt makes the read in progress and every later one fail.
func (b *body) interrupt() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cut = true
	_ = b.rc.SetReadDeadline(time.Now())
}

// end lifts the read deadline once the body is done with.
func (b *body) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.cut {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}
