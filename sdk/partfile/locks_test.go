package partfile_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/sdk/partfile"
)

// blocked reports whether done is still open after a moment: the operation behind it
// waits. (A wrongly blocked operation passes this check only if it is slow; one that
// wrongly proceeds fails it.)
func blocked(done <-chan struct{}) bool {
	select {
	case <-done:
		return false
	case <-time.After(50 * time.Millisecond):
		return true
	}
}

func wait(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still waits", what)
	}
}

func TestLocksSamePartTakesTurns(t *testing.T) {
	t.Parallel()
	var l partfile.Locks
	_, release, err := l.Part(t.Context(), "obj", 1)
	if err != nil {
		t.Fatal(err)
	}
	// Another part of the object, and the same part of another object, go ahead.
	_, r2, err := l.Part(t.Context(), "obj", 2)
	if err != nil {
		t.Fatal(err)
	}
	_, r3, err := l.Part(t.Context(), "other", 1)
	if err != nil {
		t.Fatal(err)
	}
	r2()
	r3()

	done := make(chan struct{})
	go func() {
		defer close(done)
		_, r, err := l.Part(t.Context(), "obj", 1)
		if err != nil {
			t.Error(err)
			return
		}
		r()
	}()
	if !blocked(done) {
		t.Fatal("a second write of the same part did not wait for the first")
	}
	release()
	release() // a second call does nothing
	wait(t, done, "the second write after the first released the part")

	ctx, cancel := context.WithCancel(t.Context())
	_, release, _ = l.Part(t.Context(), "obj", 1)
	cancel()
	if _, _, err := l.Part(ctx, "obj", 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Part with a cancelled context on a busy part = %v, want context.Canceled", err)
	}
	release()
}

func TestLocksExclusive(t *testing.T) {
	t.Parallel()
	var l partfile.Locks
	pctx, release, err := l.Part(t.Context(), "obj", 0)
	if err != nil {
		t.Fatal(err)
	}

	// Without cancel, Exclusive waits for the write to end, which is left alone.
	done := make(chan struct{})
	go func() {
		defer close(done)
		unlock, err := l.Exclusive(t.Context(), "obj", false)
		if err != nil {
			t.Error(err)
			return
		}
		// Parts wait while the object is held.
		started := make(chan struct{})
		go func() {
			defer close(started)
			_, r, err := l.Part(t.Context(), "obj", 5)
			if err == nil {
				r()
			}
		}()
		if !blocked(started) {
			t.Error("a part was written while the object was held exclusively")
		}
		unlock()
		wait(t, started, "a part after the exclusive lock was released")
	}()
	if !blocked(done) {
		t.Fatal("Exclusive did not wait for the part being written")
	}
	if pctx.Err() != nil {
		t.Fatal("Exclusive without cancel cancelled the part being written")
	}
	release()
	wait(t, done, "Exclusive after the write ended")

	// With cancel, it cancels the write and waits for it to give up.
	pctx, release, _ = l.Part(t.Context(), "obj", 0)
	go func() {
		<-pctx.Done()
		release()
	}()
	unlock, err := l.Exclusive(t.Context(), "obj", true)
	if err != nil {
		t.Fatalf("Exclusive with cancel: %v", err)
	}
	unlock()

	// A wait that runs out leaves the object usable.
	_, release, _ = l.Part(t.Context(), "obj", 0)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Exclusive(ctx, "obj", false); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Exclusive that ran out of time = %v, want DeadlineExceeded", err)
	}
	if _, r, err := l.Part(t.Context(), "obj", 1); err != nil {
		t.Errorf("Part after an abandoned Exclusive: %v", err)
	} else {
		r()
	}
	release()
}
