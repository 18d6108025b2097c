package upload

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// newPartsEnv is newEnv with a part-wise fake backend.
func newPartsEnv(t *testing.T, mod ...func(*Options)) *env {
	t.Helper()
	e := newEnv(t, mod...)
	e.backend.enableParts()
	return e
}

// waitFor polls cond until it holds; it fails the test after a generous bound (this is a
// wait for background work, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) status(t *testing.T, id string) *View {
	t.Helper()
	v, err := e.svc.Status(context.Background(), id, true)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return v
}

func (e *env) stagedParts(t *testing.T, id string) int {
	t.Helper()
	n := 0
	for i := range 1000 {
		if e.stage.HasPart(id, i) {
			n++
		}
	}
	return n
}

func TestPartwiseDeliversInBackground(t *testing.T) {
	e := newPartsEnv(t)
	content := data(5*testChunk+100, 1)
	c := e.init(t, "v/a.bin", len(content))
	if c.Upload.DeliveryMode != host.DeliverParts {
		t.Fatalf("delivery mode %q, want parts", c.Upload.DeliveryMode)
	}
	// Out of order, so some parts wait in staging for the digest.
	for _, n := range []int{3, 1, 0, 5, 2, 4} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
	waitFor(t, "all parts delivered", func() bool {
		v := e.status(t, c.Upload.ID)
		return v.DeliveredParts == 6 && v.Upload.HashedParts == 6
	})
	waitFor(t, "staging emptied", func() bool { return e.stagedParts(t, c.Upload.ID) == 0 })
	if v := e.status(t, c.Upload.ID); v.Upload.BytesDelivered != int64(len(content)) || v.Upload.Status != host.StatusPending {
		t.Fatalf("before complete: %+v", v.Upload)
	}
	if _, ok := e.backend.object(c.Upload.Key()); ok {
		t.Fatal("object visible before complete")
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	got, _ := e.backend.object(c.Upload.Key())
	if !bytes.Equal(got, content) {
		t.Fatal("delivered bytes differ")
	}
	if u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("delivered sha256 %s, want %s", u.DeliveredSHA256, hexSum(content))
	}
	if e.backend.putCount() != 0 {
		t.Fatalf("%d whole Puts for a part-wise upload", e.backend.putCount())
	}
	if k := e.backend.unfinishedKeys(); len(k) != 0 {
		t.Fatalf("unfinished objects left: %v", k)
	}
}

// TestPartwiseStagedReads: with a backend that reads staged parts from their files, every
// part is handed over as its file (none of its bytes go through the host), and the
// whole-file digest is still computed from the staged copies.
func TestPartwiseStagedReads(t *testing.T) {
	e := newPartsEnv(t)
	e.backend.staged = true
	content := data(5*testChunk+100, 1)
	c := e.init(t, "v/staged.bin", len(content))
	for _, n := range []int{3, 1, 0, 5, 2, 4} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
	waitFor(t, "all parts delivered and hashed", func() bool {
		v := e.status(t, c.Upload.ID)
		return v.DeliveredParts == 6 && v.Upload.HashedParts == 6
	})
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if got, _ := e.backend.object(c.Upload.Key()); !bytes.Equal(got, content) {
		t.Fatal("delivered bytes differ")
	}
	if u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("delivered sha256 %s, want %s", u.DeliveredSHA256, hexSum(content))
	}
	e.backend.mu.Lock()
	staged, puts := e.backend.stagedParts, e.backend.partPuts
	e.backend.mu.Unlock()
	if staged != 6 || puts != 6 {
		t.Fatalf("%d of %d part deliveries read the staged file, want 6 of 6", staged, puts)
	}
}

func TestPartwiseResentParts(t *testing.T) {
	e := newPartsEnv(t)
	content := data(3*testChunk, 2)
	c := e.init(t, "a.bin", len(content))
	e.putAll(t, c, content)
	waitFor(t, "delivered and hashed", func() bool { return e.status(t, c.Upload.ID).Upload.HashedParts == 3 })

	// The same bytes again: accepted, nothing changes.
	if _, err := e.put(t, c, content, 1); err != nil {
		t.Fatalf("same bytes again: %v", err)
	}
	// Other bytes for a part already in the digest: refused.
	other := bytes.Clone(content)
	other[testChunk+5] ^= 0xff
	_, err := e.put(t, c, other, 1)
	wantCode(t, err, host.CodePartDelivered)

	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if got, _ := e.backend.object(c.Upload.Key()); !bytes.Equal(got, content) {
		t.Fatal("delivered bytes differ")
	}
}

func TestPartwiseReplaceBeforeHashed(t *testing.T) {
	e := newPartsEnv(t)
	content := data(3*testChunk, 3)
	c := e.init(t, "a.bin", len(content))
	// Part 0 is held back, so parts 1 and 2 are delivered but not hashed: they may be replaced.
	for _, n := range []int{1, 2} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "parts 1, 2 delivered", func() bool { return e.status(t, c.Upload.ID).DeliveredParts == 2 })
	newer := bytes.Clone(content)
	newer[2*testChunk+1] ^= 0x55
	if _, err := e.put(t, c, newer, 2); err != nil {
		t.Fatalf("replacing part 2: %v", err)
	}
	if _, err := e.put(t, c, newer, 0); err != nil {
		t.Fatal(err)
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if got, _ := e.backend.object(c.Upload.Key()); !bytes.Equal(got, newer) {
		t.Fatal("the replaced part did not win")
	}
}

// A part replaced while its older version is being delivered: the older delivery is not
// cancelled but runs to its end, and the newer one is delivered after it. A backend may
// keep a part whose sender went away (an S3 server finishes an UploadPart it received
// whole), so a cancelled older delivery could land after the newer one and void its
// receipt.
func TestPartwiseReplacedWhileDelivering(t *testing.T) {
	e := newPartsEnv(t)
	hold, held := make(chan struct{}), make(chan struct{}, 4)
	e.backend.partHold, e.backend.partHeld = hold, held
	content := data(testChunk, 7)
	c := e.init(t, "a.bin", len(content))
	if _, err := e.put(t, c, content, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the first version's delivery did not start")
	}
	newer := bytes.Clone(content)
	newer[1] ^= 0x55
	if _, err := e.put(t, c, newer, 0); err != nil {
		t.Fatalf("replacing part 0: %v", err)
	}
	// The newer version's delivery must wait for the older one.
	select {
	case <-held:
		t.Fatal("the newer version was sent to the backend while the older one still was")
	case <-time.After(200 * time.Millisecond):
	}
	close(hold)
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if got, _ := e.backend.object(c.Upload.Key()); !bytes.Equal(got, newer) {
		t.Fatal("the object is not the newer version")
	}
}

func TestPartwiseTransientFailuresRetry(t *testing.T) {
	e := newPartsEnv(t)
	var mu sync.Mutex
	fails := 0
	e.backend.partFail = func(n, count int) error {
		mu.Lock()
		defer mu.Unlock()
		if count <= 2 {
			fails++
			return fmt.Errorf("%w: fake outage", sdk.ErrUnavailable)
		}
		return nil
	}
	content := data(2*testChunk+1, 4)
	c := e.init(t, "a.bin", len(content))
	e.putAll(t, c, content)
	waitFor(t, "delivered after retries", func() bool { return e.status(t, c.Upload.ID).DeliveredParts == 3 })
	if v := e.status(t, c.Upload.ID); v.Upload.DeliveryError != "" {
		t.Fatalf("delivery error not cleared after success: %q", v.Upload.DeliveryError)
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if fails != 2 {
		t.Fatalf("%d injected failures, want 2", fails)
	}
}

func TestPartwiseCompleteFailsWhileBackendDown(t *testing.T) {
	e := newPartsEnv(t)
	var down sync.Mutex
	isDown := true
	e.backend.partFail = func(n, count int) error {
		down.Lock()
		defer down.Unlock()
		if isDown {
			return fmt.Errorf("%w: fake outage", sdk.ErrUnavailable)
		}
		return nil
	}
	content := data(2*testChunk, 5)
	c := e.init(t, "a.bin", len(content))
	e.putAll(t, c, content)
	_, err := e.svc.Complete(context.Background(), c.Upload.ID)
	wantCode(t, err, host.CodeBackendUnavailable)
	v := e.status(t, c.Upload.ID)
	if v.Upload.Status != host.StatusFailed || v.Upload.DeliveryError == "" {
		t.Fatalf("after a failed complete: %+v", v.Upload)
	}
	down.Lock()
	isDown = false
	down.Unlock()
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete after the outage: %+v %v", u, err)
	}
}

func TestPartwiseBackendLostObject(t *testing.T) {
	e := newPartsEnv(t)
	content := data(4*testChunk, 6)
	c := e.init(t, "a.bin", len(content))
	for n := range 3 {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three parts delivered and removed", func() bool {
		return e.status(t, c.Upload.ID).Upload.HashedParts == 3 && e.stagedParts(t, c.Upload.ID) == 0
	})
	e.backend.loseUnfinished()
	// The last part arrives: its delivery finds the object gone.
	if _, err := e.put(t, c, content, 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lost parts pending again", func() bool {
		v := e.status(t, c.Upload.ID)
		return v.Upload.UploadedParts == 1 && v.DeliveredParts == 1
	})
	v := e.status(t, c.Upload.ID)
	for n := range 3 {
		if p := v.Parts[n]; p.Status != host.PartPending || !strings.Contains(p.Note, "lost") {
			t.Fatalf("part %d: %+v", n, p)
		}
	}
	_, err := e.svc.Complete(context.Background(), c.Upload.ID)
	wantCode(t, err, host.CodePartsMissing)
	// Other bytes for a lost part are refused: the digest already covers the originals.
	other := bytes.Clone(content)
	other[0] ^= 1
	_, err = e.put(t, c, other, 0)
	wantCode(t, err, host.CodePartDelivered)
	for n := range 3 {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("re-sending part %d: %v", n, err)
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

func TestPartwiseChecksumMismatch(t *testing.T) {
	e := newPartsEnv(t)
	content := data(2*testChunk, 7)
	c, err := e.svc.Init(context.Background(), InitRequest{Filename: "a.bin", TotalSize: int64(len(content)),
		ChecksumSHA256: hexSum([]byte("something else"))})
	if err != nil {
		t.Fatal(err)
	}
	e.putAll(t, c, content)
	_, err = e.svc.Complete(context.Background(), c.Upload.ID)
	wantCode(t, err, host.CodeChecksumMismatch)
	if _, ok := e.backend.object(c.Upload.Key()); ok {
		t.Fatal("object visible after a checksum mismatch")
	}
	v := e.status(t, c.Upload.ID)
	if v.Upload.Status != host.StatusFailed || v.Upload.UploadedParts != 0 {
		t.Fatalf("after mismatch: %+v", v.Upload)
	}
	waitFor(t, "object aborted", func() bool { return len(e.backend.unfinishedKeys()) == 0 })
}

func TestPartwiseCancelAborts(t *testing.T) {
	e := newPartsEnv(t)
	content := data(2*testChunk, 8)
	c := e.init(t, "a.bin", len(content))
	if _, err := e.put(t, c, content, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a part delivered", func() bool { return e.backend.heldParts(c.Upload.Key()) == 1 })
	if err := e.svc.Cancel(context.Background(), c.Upload.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "object aborted", func() bool { return len(e.backend.unfinishedKeys()) == 0 })
	if _, err := os.Stat(e.stage.PartPath(c.Upload.ID, 0)); !os.IsNotExist(err) {
		t.Fatalf("staging left after cancel: %v", err)
	}
}

func TestPartwiseDamagedStagedPart(t *testing.T) {
	e := newPartsEnv(t)
	gate := make(chan struct{})
	e.backend.partFail = func(n, count int) error { <-gate; return nil }
	content := data(2*testChunk, 9)
	c := e.init(t, "a.bin", len(content))
	// The backend holds the first delivery until the staged copy of part 1 was damaged.
	if _, err := e.put(t, c, content, 0); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(e.stage.PartPath(c.Upload.ID, 0), os.O_WRONLY, 0)
	if err == nil {
		// Damage part 0 for any read after the one in flight (it read it all already: the
		// fake copies before it asks partFail).
		_, err = f.WriteAt([]byte{0xde, 0xad}, 10)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.put(t, c, content, 1); err != nil {
		t.Fatal(err)
	}
	close(gate)
	// Part 0 was read intact before the damage, so it is delivered; the whole-file digest
	// reads it again only if it was not fed on the way. Part 1 is intact. Either way the
	// upload completes with the right bytes or part 0 is pending with a message.
	waitFor(t, "parts settled", func() bool {
		v := e.status(t, c.Upload.ID)
		return v.Upload.HashedParts == 2 || v.Parts[0].Status == host.PartPending
	})
	v := e.status(t, c.Upload.ID)
	if v.Parts[0].Status == host.PartPending {
		if !strings.Contains(v.Parts[0].Note, "damaged") {
			t.Fatalf("pending part 0 has no reason: %+v", v.Parts[0])
		}
		if _, err := e.put(t, c, content, 0); err != nil {
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

func TestPartwiseDamagedBeforeDelivery(t *testing.T) {
	e := newPartsEnv(t, func(o *Options) { o.PartDeliveriesPerUpload = 1 })
	gate := make(chan struct{})
	e.backend.partFail = func(n, count int) error {
		if count == 1 {
			<-gate
		}
		return nil
	}
	content := data(3*testChunk, 10)
	c := e.init(t, "a.bin", len(content))
	if _, err := e.put(t, c, content, 0); err != nil { // its delivery waits at the gate
		t.Fatal(err)
	}
	// Parts 1 and 2 are staged, then part 2's copy rots before it is read.
	for _, n := range []int{1, 2} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	// The staged copy is checked by the CRC-32C recorded with the part.
	if v := e.status(t, c.Upload.ID); v.Parts[2].CRC32C == nil {
		t.Fatal("part 2 was recorded without its CRC-32C")
	}
	f, err := os.OpenFile(e.stage.PartPath(c.Upload.ID, 2), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{1, 2, 3}, 0)
	f.Close()
	close(gate)
	waitFor(t, "part 2 pending again", func() bool {
		v := e.status(t, c.Upload.ID)
		return v.Parts[2].Status == host.PartPending && strings.Contains(v.Parts[2].Note, "damaged")
	})
	if e.backend.heldParts(c.Upload.Key()) > 2 {
		t.Fatal("the damaged part reached the backend")
	}
	if _, err := e.put(t, c, content, 2); err != nil {
		t.Fatal(err)
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if got, _ := e.backend.object(c.Upload.Key()); !bytes.Equal(got, content) {
		t.Fatal("delivered bytes differ")
	}
}

func TestPartwiseDeclinedFallsBackToPut(t *testing.T) {
	e := newPartsEnv(t)
	e.backend.declineParts = true
	content := data(2*testChunk+7, 11)
	c := e.init(t, "a.bin", len(content))
	e.putAll(t, c, content)
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if e.backend.putCount() != 1 {
		t.Fatalf("%d Puts, want 1", e.backend.putCount())
	}
	if got, _ := e.backend.object(c.Upload.Key()); !bytes.Equal(got, content) {
		t.Fatal("delivered bytes differ")
	}
}

func TestPartwiseResumesAfterRestart(t *testing.T) {
	e := newPartsEnv(t)
	content := data(4*testChunk, 12)
	c := e.init(t, "a.bin", len(content))
	for _, n := range []int{0, 2} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "two parts delivered", func() bool { return e.status(t, c.Upload.ID).DeliveredParts == 2 })
	e.svc.Close()
	// A new service (a restarted host) over the same database, staging and backend.
	svc := New(e.db, e.stage, e.backend, e.tokens, e.svc.opt)
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	e.svc = svc
	for _, n := range []int{1, 3} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	u, err := svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if got, _ := e.backend.object(c.Upload.Key()); !bytes.Equal(got, content) {
		t.Fatal("delivered bytes differ")
	}
	if e.backend.begins != 1 {
		t.Fatalf("%d objects begun, want 1 (the handle survives a restart)", e.backend.begins)
	}
}

func TestWholeDeliveryRefusesDamagedPart(t *testing.T) {
	e := newEnv(t) // a backend without part-wise storage
	content := data(3*testChunk, 13)
	c := e.init(t, "a.bin", len(content))
	e.putAll(t, c, content)
	f, err := os.OpenFile(e.stage.PartPath(c.Upload.ID, 1), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff}, 7)
	f.Close()
	_, err = e.svc.Complete(context.Background(), c.Upload.ID)
	wantCode(t, err, host.CodePartsMissing)
	if _, ok := e.backend.object(c.Upload.Key()); ok {
		t.Fatal("a file with a damaged part was delivered")
	}
	v := e.status(t, c.Upload.ID)
	if p := v.Parts[1]; p.Status != host.PartPending || !strings.Contains(p.Note, "damaged") {
		t.Fatalf("part 1 after the damage: %+v", p)
	}
	if _, err := e.put(t, c, content, 1); err != nil {
		t.Fatal(err)
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if got, _ := e.backend.object(c.Upload.Key()); !bytes.Equal(got, content) {
		t.Fatal("delivered bytes differ")
	}
}
