package upload

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// partKey names one part of one upload.
type partKey struct {
	id string
	n  int
}

// writers admits part writes: at most one per part (a newer write of a part interrupts the
// one in flight, whose client is most likely gone: a retry must not wait for a dead
// connection), at most MaxPartWritesPerUpload per upload and MaxPartWrites in all, so that
// no client, however many connections it opens, holds more than its share.
type writers struct {
	mu        sync.Mutex
	byPart    map[partKey]*writer
	perUpload map[string]int
	total     int
	idle      chan struct{} // closed when total drops to 0; nil while it is 0
}

// receiving returns nil when no part is being received, else a channel closed when none
// is any more.
func (w *writers) receiving() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.total == 0 {
		return nil
	}
	return w.idle
}

type writer struct {
	interrupt   func() // makes the write's body reads fail now; may be nil
	done        chan struct{}
	cut         chan struct{} // closed when a newer write of the part takes over
	cutOnce     sync.Once
	interrupted atomic.Bool // a newer write of the part took over
	reading     atomic.Bool // the write is still reading its body
}

// replaceWait bounds how long a part write waits for the write it interrupted to end.
const replaceWait = 10 * time.Second

// admit registers a write of part n of upload id, interrupting an earlier write of the
// same part, and returns it with the func to call when the write ended. It refuses with
// too_many_requests beyond the budgets.
func (s *Service) admit(ctx context.Context, id string, n int, interrupt func()) (*writer, func(), error) {
	w := &s.writers
	key := partKey{id, n}
	deadline := time.Now().Add(replaceWait)
	for {
		w.mu.Lock()
		if w.byPart == nil {
			w.byPart, w.perUpload = map[partKey]*writer{}, map[string]int{}
		}
		old, busy := w.byPart[key]
		if !busy {
			// The counts go into the messages as read under the lock.
			if total := w.total; total >= s.opt.MaxPartWrites {
				w.mu.Unlock()
				return nil, nil, host.Errorf(host.CodeTooManyRequests, "the server is receiving %d parts already; retry in a moment", total)
			}
			if mine := w.perUpload[id]; mine >= s.opt.MaxPartWritesPerUpload {
				w.mu.Unlock()
				return nil, nil, host.Errorf(host.CodeTooManyRequests, "upload %s has %d parts being received already; retry in a moment",
					id, mine)
			}
			me := &writer{interrupt: interrupt, done: make(chan struct{}), cut: make(chan struct{})}
			me.reading.Store(true)
			w.byPart[key] = me
			w.perUpload[id]++
			if w.total == 0 {
				w.idle = make(chan struct{})
			}
			w.total++
			s.partWritesChanged(w.total)
			w.mu.Unlock()
			return me, func() {
				w.mu.Lock()
				delete(w.byPart, key)
				if w.perUpload[id]--; w.perUpload[id] <= 0 {
					delete(w.perUpload, id)
				}
				w.total--
				if w.total == 0 {
					close(w.idle)
					w.idle = nil
				}
				s.partWritesChanged(w.total)
				w.mu.Unlock()
				close(me.done)
			}, nil
		}
		w.mu.Unlock()
		old.interrupted.Store(true)
		if old.interrupt != nil && old.reading.Load() {
			// Only a write still reading its body is cut: one that has read it all is
			// about to commit, and its answer must not be disturbed.
			old.interrupt()
		}
		old.cutOnce.Do(func() { close(old.cut) }) // ends its waits before the body (openInPlace)
		s.log.Debug("a newer write of the part replaces the one in flight", "upload_id", id, "part", n)
		select {
		case <-old.done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(time.Until(deadline)):
			return nil, nil, host.Errorf(host.CodeTooManyRequests, "part %d is still being received by an earlier request; retry in a moment", n)
		}
	}
}

func (s *Service) partWritesChanged(n int) {
	if s.opt.PartWritesChanged != nil {
		s.opt.PartWritesChanged(n)
	}
}
