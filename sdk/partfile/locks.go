package partfile

import (
	"context"
	"sync"
)

// Locks coordinates the calls of one process on its unfinished objects, each named by a
// string of the caller's choice (the data file's path, say): writes of one part take turns,
// writes of different parts run at once, and a commit or an abort of an object holds it
// exclusively, after the writes in flight ended. Every wait ends when its ctx does. The zero
// Locks is ready to use; it must not be copied after first use.
type Locks struct {
	mu   sync.Mutex
	objs map[string]*lockState
}

type lockState struct {
	refs      int                        // calls holding or waiting for a lock of the object
	parts     map[int]context.CancelFunc // parts being written, with what cancels each
	exclusive bool
	changed   chan struct{} // closed and replaced whenever parts or exclusive change
}

func (l *Locks) acquire(name string) *lockState {
	if l.objs == nil {
		l.objs = map[string]*lockState{}
	}
	o := l.objs[name]
	if o == nil {
		o = &lockState{parts: map[int]context.CancelFunc{}, changed: make(chan struct{})}
		l.objs[name] = o
	}
	o.refs++
	return o
}

func (l *Locks) drop(name string, o *lockState) {
	if o.refs--; o.refs == 0 {
		delete(l.objs, name)
	}
}

func (o *lockState) notify() {
	close(o.changed)
	o.changed = make(chan struct{})
}

// wait releases l.mu until o changes or ctx ends, and takes it again.
func (l *Locks) wait(ctx context.Context, o *lockState) error {
	ch := o.changed
	l.mu.Unlock()
	defer l.mu.Lock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Part locks part n of object name for writing, waiting while another call writes the same
// part or the object is held exclusively. It returns a context derived from ctx that
// Exclusive with cancel set cancels (write the part under it), and the function that
// releases the lock (call it exactly once; later calls do nothing).
func (l *Locks) Part(ctx context.Context, name string, n int) (context.Context, func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.acquire(name)
	for o.exclusive || o.parts[n] != nil {
		if err := l.wait(ctx, o); err != nil {
			l.drop(name, o)
			return nil, nil, err
		}
	}
	pctx, cancel := context.WithCancel(ctx)
	o.parts[n] = cancel
	var once sync.Once
	return pctx, func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			cancel()
			delete(o.parts, n)
			o.notify()
			l.drop(name, o)
		})
	}, nil
}

// Exclusive locks object name for a commit or an abort: it waits for another exclusive
// holder, keeps new Part calls waiting, and waits until the parts being written are done;
// with cancel set it first cancels their contexts. It returns the function that releases
// the lock (call it exactly once; later calls do nothing).
func (l *Locks) Exclusive(ctx context.Context, name string, cancel bool) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.acquire(name)
	for o.exclusive {
		if err := l.wait(ctx, o); err != nil {
			l.drop(name, o)
			return nil, err
		}
	}
	o.exclusive = true
	if cancel {
		for _, c := range o.parts {
			c()
		}
	}
	for len(o.parts) > 0 {
		if err := l.wait(ctx, o); err != nil {
			o.exclusive = false
			o.notify()
			l.drop(name, o)
			return nil, err
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			o.exclusive = false
			o.notify()
			l.drop(name, o)
		})
	}, nil
}
