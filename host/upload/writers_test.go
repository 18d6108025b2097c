package upload

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// stallingBody yields head, then blocks until interrupted.
type stallingBody struct {
	head    []byte
	stop    chan struct{}
	reading chan struct{}
}

func newStalling(head []byte) *stallingBody {
	return &stallingBody{head: head, stop: make(chan struct{}), reading: make(chan struct{}, 1)}
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		return n, nil
	}
	select {
	case b.reading <- struct{}{}:
	default:
	}
	<-b.stop
	return 0, errors.New("read deadline exceeded")
}

func (b *stallingBody) interrupt() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
}

func TestNewerWriteReplacesStalledOne(t *testing.T) {
	e := newEnv(t)
	content := data(2*testChunk, 1)
	c := e.init(t, "a.bin", len(content))
	claims, _ := e.tokens.Verify(c.Tokens[0])
	stalled := newStalling(content[:100])
	errc := make(chan error, 1)
	go func() {
		_, err := e.svc.PutPart(context.Background(), PartRequest{UploadID: c.Upload.ID, Part: 0, Claims: claims,
			Body: stalled, ContentLength: testChunk, Interrupt: stalled.interrupt})
		errc <- err
	}()
	<-stalled.reading
	// The retry of the same part takes over at once, without waiting for the stalled body.
	if _, err := e.put(t, c, content, 0); err != nil {
		t.Fatalf("newer write: %v", err)
	}
	if err := <-errc; err == nil {
		t.Fatal("the stalled write succeeded")
	}
	e.putAll(t, c, content)
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if got, _ := e.backend.object(c.Upload.Key()); !bytes.Equal(got, content) {
		t.Fatal("delivered bytes differ")
	}
}

func TestPartWriteBudgets(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxPartWrites = 2; o.MaxPartWritesPerUpload = 1 })
	content := data(3*testChunk, 2)
	a := e.init(t, "a.bin", len(content))
	b := e.init(t, "b.bin", len(content))
	z := e.init(t, "z.bin", len(content))
	start := func(c *Created, n int) *stallingBody {
		claims, _ := e.tokens.Verify(c.Tokens[n])
		body := newStalling(content[:10])
		go e.svc.PutPart(context.Background(), PartRequest{UploadID: c.Upload.ID, Part: n, Claims: claims,
			Body: body, ContentLength: testChunk, Interrupt: body.interrupt})
		<-body.reading
		return body
	}
	sa := start(a, 0)
	defer sa.interrupt()
	// Per upload: a second part of a is refused.
	claims, _ := e.tokens.Verify(a.Tokens[1])
	_, err := e.svc.PutPart(context.Background(), PartRequest{UploadID: a.Upload.ID, Part: 1, Claims: claims,
		Body: bytes.NewReader(content[testChunk : 2*testChunk]), ContentLength: testChunk})
	wantCode(t, err, host.CodeTooManyRequests)
	sb := start(b, 0)
	defer sb.interrupt()
	// In total: a third upload's part is refused.
	_, err = e.put(t, z, content, 0)
	wantCode(t, err, host.CodeTooManyRequests)
	sa.interrupt()
	sb.interrupt()
	// Once the writes ended, parts are taken again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := e.put(t, z, content, 0)
		if err == nil {
			break
		}
		if host.ErrorCode(err) != host.CodeTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("after the stalled writes ended: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestInitReservesStaging(t *testing.T) {
	e := newEnv(t)
	e.svc.free = func() (int64, error) { return 10 * testChunk, nil }
	if _, err := e.svc.Init(context.Background(), InitRequest{Filename: "a.bin", TotalSize: 6 * testChunk}); err != nil {
		t.Fatal(err)
	}
	// 6 of 10 chunks are promised: a second upload of 6 does not fit, one of 4 does.
	_, err := e.svc.Init(context.Background(), InitRequest{Filename: "b.bin", TotalSize: 6 * testChunk})
	wantCode(t, err, host.CodeInsufficientStorage)
	c, err := e.svc.Init(context.Background(), InitRequest{Filename: "c.bin", TotalSize: 4 * testChunk})
	if err != nil {
		t.Fatal(err)
	}
	// Cancelling gives the space back.
	if err := e.svc.Cancel(context.Background(), c.Upload.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Init(context.Background(), InitRequest{Filename: "d.bin", TotalSize: 4 * testChunk}); err != nil {
		t.Fatalf("after cancel: %v", err)
	}
}

func TestPartwiseReservesWhatItHolds(t *testing.T) {
	e := newPartsEnv(t, func(o *Options) { o.MaxPartWritesPerUpload = 2; o.PartDeliveriesPerUpload = 1 })
	e.svc.free = func() (int64, error) { return 10 * testChunk, nil }
	// A part-wise upload much larger than the disk reserves only what it can stage at once.
	c, err := e.svc.Init(context.Background(), InitRequest{Filename: "big.bin", TotalSize: 100 * testChunk})
	if err != nil {
		t.Fatalf("part-wise init larger than staging: %v", err)
	}
	if got := e.svc.reservation(c.Upload); got != 3*testChunk {
		t.Fatalf("reservation %d, want %d", got, 3*testChunk)
	}
}

func TestPartwiseStagingFullWaitsForRoom(t *testing.T) {
	e := newPartsEnv(t, func(o *Options) { o.MaxPartWritesPerUpload = 1; o.PartDeliveriesPerUpload = 1 })
	gate := make(chan struct{})
	e.backend.partFail = func(n, count int) error { <-gate; return nil }
	content := data(6*testChunk, 3)
	c := e.init(t, "a.bin", len(content))
	// The backend holds every delivery: parts pile up in staging up to the cap (2).
	for _, n := range []int{0, 1} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() { _, err := e.put(t, c, content, 3); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("a part beyond the staging cap was taken at once (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(gate) // the backend catches up: room in staging, the held write goes on
	if err := <-done; err != nil {
		t.Fatalf("the held write: %v", err)
	}
	for _, n := range []int{2, 4, 5} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if got, _ := e.backend.object(c.Upload.Key()); !bytes.Equal(got, content) {
		t.Fatal("delivered bytes differ")
	}
}
