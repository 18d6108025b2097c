package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

func newPartFilesEnv(t *testing.T, mod ...func(*Options)) *env {
	t.Helper()
	e := newPartsEnv(t, mod...)
	e.backend.enablePartFiles(t.TempDir())
	return e
}

// counts returns the fake's PutPart calls and the parts recorded in place.
func (f *fakeBackend) counts() (puts, recorded int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.partPuts, f.recorded
}

// Parts written in place are in the backend at their 200, never staged, and make the file.
func TestPartFilesInPlace(t *testing.T) {
	e := newPartFilesEnv(t)
	content := data(5*testChunk+100, 11)
	c := e.init(t, "pf/in-place.bin", len(content))
	for i, n := range []int{3, 1, 0, 5, 2, 4} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		if v := e.status(t, c.Upload.ID); v.DeliveredParts != i+1 {
			t.Fatalf("after the 200 of part %d: %d parts delivered, want %d", n, v.DeliveredParts, i+1)
		}
		if e.stage.HasPart(c.Upload.ID, n) {
			t.Fatalf("part %d written in place is staged too", n)
		}
	}
	u := e.completeAs(t, c, content)
	if u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("delivered sha256 %s, want %s", u.DeliveredSHA256, hexSum(content))
	}
	if puts, recorded := e.backend.counts(); puts != 0 || recorded != 6 {
		t.Fatalf("%d PutPart calls and %d parts recorded in place, want 0 and 6", puts, recorded)
	}
}

// Init begins the backend's object in the background, before any part: the first part
// written in place finds its handle recorded and begins no second object. A backend with
// part-wise objects but no part files begins nothing before it has a part to deliver.
func TestPartFilesObjectBegunAtInit(t *testing.T) {
	e := newPartFilesEnv(t)
	content := data(2*testChunk, 3)
	c := e.init(t, "pf/begun-at-init.bin", len(content))
	begins := func() int {
		e.backend.mu.Lock()
		defer e.backend.mu.Unlock()
		return e.backend.begins
	}
	waitFor(t, "the object begun after init", func() bool {
		u, err := e.db.Upload(context.Background(), c.Upload.ID)
		return err == nil && u.Handle != nil
	})
	if got := begins(); got != 1 {
		t.Fatalf("%d objects begun after init, want 1", got)
	}
	for n := range 2 {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
	if e.stage.HasPart(c.Upload.ID, 0) {
		t.Fatal("part 0 was staged, not written into the object begun at init")
	}
	if got := begins(); got != 1 {
		t.Fatalf("%d objects begun after two parts, want 1", got)
	}
	e.completeAs(t, c, content)

	staged := newPartsEnv(t)
	c = staged.init(t, "pf/no-part-files.bin", len(content))
	time.Sleep(100 * time.Millisecond) // a begin started by init would have run by now
	staged.backend.mu.Lock()
	got := staged.backend.begins
	staged.backend.mu.Unlock()
	if got != 0 {
		t.Fatalf("a backend without part files: %d objects begun at init, want 0", got)
	}
}

// A begin at init that fails is tried once: uploads created while the backend cannot
// begin objects leave no pump retrying without a part. The first part's write asks again,
// is staged while the backend still fails, and goes into the part file once it works.
func TestPartFilesFailedBeginAtInitIsNotRetried(t *testing.T) {
	e := newPartFilesEnv(t)
	e.backend.mu.Lock()
	e.backend.beginFail = errors.New("fake: the backend's disk is full")
	e.backend.mu.Unlock()
	tries := func() int {
		e.backend.mu.Lock()
		defer e.backend.mu.Unlock()
		return e.backend.beginTries
	}
	content := data(2*testChunk, 5)
	c := e.init(t, "pf/begin-fails.bin", len(content))
	waitFor(t, "the begin at init tried", func() bool { return tries() >= 1 })
	time.Sleep(700 * time.Millisecond) // a retry (the first after 500 ms) would have come by now
	if got := tries(); got != 1 {
		t.Fatalf("the begin at init was tried %d times with no part sent, want 1", got)
	}
	u, err := e.db.Upload(context.Background(), c.Upload.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.DeliveryError != "" {
		t.Fatalf("a failed begin at init was recorded as a delivery error: %q", u.DeliveryError)
	}

	if _, err := e.put(t, c, content, 0); err != nil {
		t.Fatalf("part 0 while the backend cannot begin: %v", err)
	}
	if !e.stage.HasPart(c.Upload.ID, 0) {
		t.Fatal("part 0 was not staged while the backend could not begin the object")
	}
	waitFor(t, "the first part's begin retried", func() bool { return tries() >= 2 })
	e.backend.mu.Lock()
	e.backend.beginFail = nil
	e.backend.mu.Unlock()
	if _, err := e.put(t, c, content, 1); err != nil {
		t.Fatalf("part 1: %v", err)
	}
	e.completeAs(t, c, content)
}

// A part sent again after its 200 is staged and delivered through PutPart, so that its
// acknowledged bytes in the part file are never overwritten by a send that may break off;
// the newer bytes make the file.
func TestPartFilesResendIsStaged(t *testing.T) {
	e := newPartFilesEnv(t)
	content := data(3*testChunk, 12)
	c := e.init(t, "pf/resend.bin", len(content))
	if _, err := e.put(t, c, content, 2); err != nil { // not in the digest before parts 0 and 1
		t.Fatal(err)
	}
	newer := bytes.Clone(content)
	newer[2*testChunk+9] ^= 0xff
	if _, err := e.put(t, c, newer, 2); err != nil {
		t.Fatalf("part 2 sent again: %v", err)
	}
	waitFor(t, "the resent part delivered", func() bool { puts, _ := e.backend.counts(); return puts == 1 })
	// A resend that breaks off leaves the acknowledged version alone.
	claims, _ := e.tokens.Verify(c.Tokens[2])
	_, err := e.svc.PutPart(context.Background(), PartRequest{UploadID: c.Upload.ID, Part: 2, Claims: claims,
		Body: io.MultiReader(bytes.NewReader(content[2*testChunk:2*testChunk+100]), errReader{}), ContentLength: testChunk})
	if err == nil {
		t.Fatal("a part whose body broke off was stored")
	}
	for n := range 2 {
		if _, err := e.put(t, c, newer, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
	e.completeAs(t, c, newer)
	if puts, recorded := e.backend.counts(); puts != 1 || recorded != 3 {
		t.Fatalf("%d PutPart calls and %d parts recorded in place, want 1 and 3", puts, recorded)
	}
}

// Parts sent again with the same bytes before part 0 came (a client retrying answers it
// lost) keep their stored version: nothing is staged, kept or delivered again, and no
// resend waits for the digest, however many there are.
func TestPartFilesIdenticalResendIsNotKept(t *testing.T) {
	e := newPartFilesEnv(t, func(o *Options) { o.MaxPartWritesPerUpload = 1; o.PartDeliveriesPerUpload = 1 })
	const parts = 6 // three times the staging cap of 2
	content := data(parts*testChunk, 13)
	c := e.init(t, "pf/retries.bin", len(content))
	for n := 1; n < parts; n++ {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
	for round := range 2 {
		for n := 1; n < parts; n++ {
			start := time.Now()
			if _, err := e.put(t, c, content, n); err != nil {
				t.Fatalf("part %d sent again (round %d): %v", n, round, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("part %d sent again waited %v", n, d)
			}
			if e.stage.HasPart(c.Upload.ID, n) {
				t.Fatalf("part %d sent again with the same bytes is kept in staging", n)
			}
		}
	}
	if _, err := e.put(t, c, content, 0); err != nil {
		t.Fatal(err)
	}
	e.completeAs(t, c, content)
	if puts, recorded := e.backend.counts(); puts != 0 || recorded != parts {
		t.Fatalf("%d PutPart calls and %d parts recorded in place, want 0 and %d", puts, recorded, parts)
	}
}

// A part resent with the same bytes after its copy in the part file rotted replaces the
// spoilt copy (the resend is kept), so complete needs no further resend.
func TestPartFilesIdenticalResendRepairsRot(t *testing.T) {
	e := newPartFilesEnv(t)
	content := data(3*testChunk, 16)
	c := e.init(t, "pf/rot.bin", len(content))
	for _, n := range []int{1, 2} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.backend.spoilPartFile(c.Upload.Key(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.put(t, c, content, 1); err != nil {
		t.Fatal(err)
	}
	if !e.stage.HasPart(c.Upload.ID, 1) {
		t.Fatal("the resend of a part whose stored copy rotted was dropped")
	}
	if _, err := e.put(t, c, content, 0); err != nil {
		t.Fatal(err)
	}
	e.completeAs(t, c, content)
}

// A part resent with the same bytes after the digest read it, whose copy in the part file
// rotted since, is kept and delivered again, which repairs the file (the digest stands: the
// bytes are the ones it read).
func TestPartFilesIdenticalResendAfterDigestRepairs(t *testing.T) {
	e := newPartFilesEnv(t)
	content := data(3*testChunk, 17)
	c := e.init(t, "pf/rot-after-digest.bin", len(content))
	for n := range 3 {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the digest of the three parts", func() bool {
		p := e.svc.runningPump(c.Upload.ID)
		if p == nil {
			return false
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.hashed == 3
	})
	if err := e.backend.spoilPartFile(c.Upload.Key(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.put(t, c, content, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the resent part delivered over the rotted copy", func() bool { puts, _ := e.backend.counts(); return puts == 1 })
	e.completeAs(t, c, content)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// Bytes of a part that rotted in the part file before the digest read them back put the
// part back to pending with a message; sent again, it makes the file.
func TestPartFilesDamaged(t *testing.T) {
	e := newPartFilesEnv(t)
	content := data(3*testChunk, 13)
	c := e.init(t, "pf/damaged.bin", len(content))
	for _, n := range []int{1, 2} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.backend.spoilPartFile(c.Upload.Key(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.put(t, c, content, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the damaged part pending", func() bool {
		v := e.status(t, c.Upload.ID)
		return v.Parts[1].Status == host.PartPending && v.Parts[1].Note != ""
	})
	if _, err := e.put(t, c, content, 1); err != nil {
		t.Fatalf("the damaged part sent again: %v", err)
	}
	e.completeAs(t, c, content)
}

// When the digest finds a part written in place damaged, the later parts damaged too are
// named with it: complete asks for all of them at once, and they are pending in status.
func TestPartFilesDamagedNamesAll(t *testing.T) {
	e := newPartFilesEnv(t)
	content := data(5*testChunk, 15)
	c := e.init(t, "pf/damaged-many.bin", len(content))
	for n := 1; n < 5; n++ { // the digest cannot start before part 0
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int{2, 3, 4} {
		if err := e.backend.spoilPartFile(c.Upload.Key(), n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.put(t, c, content, 0); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Complete(context.Background(), c.Upload.ID)
	v := e.status(t, c.Upload.ID)
	var pending []int
	for n, pt := range v.Parts {
		if pt.Status == host.PartPending {
			pending = append(pending, n)
		}
	}
	wantCode(t, err, host.CodePartsMissing)
	if fmt.Sprint(pending) != "[2 3 4]" || !strings.Contains(err.Error(), "parts 2, 3, 4 must be sent again") {
		t.Fatalf("complete: %v; pending parts %v, want 2, 3 and 4 named at once", err, pending)
	}
	for _, n := range pending {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d sent again: %v", n, err)
		}
	}
	e.completeAs(t, c, content)
}

// The digest of parts written in place waits while a part is being received, and goes on
// once none is (or complete waits for it).
func TestPartFilesDigestYields(t *testing.T) {
	e := newPartFilesEnv(t, func(o *Options) { o.DigestBacklog = 1 << 30 })
	content := data(3*testChunk, 14)
	c := e.init(t, "pf/yield.bin", len(content))
	pr, pw := io.Pipe()
	claims, _ := e.tokens.Verify(c.Tokens[2])
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.PutPart(context.Background(), PartRequest{UploadID: c.Upload.ID, Part: 2, Claims: claims,
			Body: pr, ContentLength: int64(len(content) - 2*testChunk)})
		done <- err
	}()
	if _, err := pw.Write(content[2*testChunk : 2*testChunk+10]); err != nil { // part 2 is being received
		t.Fatal(err)
	}
	// Part 1 before part 0: part 0 feeds the digest as it arrives, part 1 is for the
	// digest to read back.
	for _, n := range []int{1, 0} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing to wait for but time: the digest must not have read part 1 meanwhile.
	time.Sleep(300 * time.Millisecond)
	if v := e.status(t, c.Upload.ID); v.Upload.HashedParts != 1 {
		t.Fatalf("%d parts in the digest while part 2 was being received, want 1 (part 0, hashed as it arrived)", v.Upload.HashedParts)
	}
	if _, err := pw.Write(content[2*testChunk+10:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("part 2: %v", err)
	}
	waitFor(t, "the digest after the last part", func() bool { return e.status(t, c.Upload.ID).Upload.HashedParts == 3 })
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete || u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("complete: %+v %v", u, err)
	}
}

// A part file that is not of the object's size is not taken for the object's: the parts
// are staged and delivered as for a plugin without part files.
func TestPartFilesForeignFileIsStaged(t *testing.T) {
	e := newPartFilesEnv(t)
	e.backend.mu.Lock()
	e.backend.partFileWrongSize = true
	e.backend.mu.Unlock()
	content := data(2*testChunk+5, 15)
	c := e.init(t, "pf/foreign.bin", len(content))
	e.putAll(t, c, content)
	e.completeAs(t, c, content)
	if puts, recorded := e.backend.counts(); puts != 3 || recorded != 0 {
		t.Fatalf("%d PutPart calls and %d parts recorded in place, want 3 and 0", puts, recorded)
	}
}

// Where the digest falls more than twice DigestBacklog behind the parts received, a part
// written in place waits for it, and goes on once it caught up.
func TestPartFilesWaitForDigest(t *testing.T) {
	e := newPartFilesEnv(t, func(o *Options) { o.DigestBacklog = 2 * testChunk })
	gate := holdDigestReads(e)
	content := data(7*testChunk, 16)
	c := e.init(t, "pf/lag.bin", len(content))
	// Part 0 last: it is hashed as it arrives, and parts 1 to 5 are behind it, for the
	// digest to read back.
	for _, n := range []int{1, 2, 3, 4, 5, 0} { // 5 KiB behind after part 0
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
	waitBacklog(t, e, c, 5*testChunk)
	done := make(chan error, 1)
	go func() { _, err := e.put(t, c, content, 6); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("part 6 was taken (%v) while the digest was 5 KiB behind, twice DigestBacklog is 4 KiB", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatalf("part 6 once the digest caught up: %v", err)
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete || u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("complete: %+v %v", u, err)
	}
}

// Parts beyond a part not yet received are no backlog (the digest cannot reach them): with
// part 0 missing, parts written in place do not wait for the digest however many arrive,
// and part 0, the one the digest waits for, does not wait either.
func TestPartFilesGapIsNoBacklog(t *testing.T) {
	e := newPartFilesEnv(t, func(o *Options) { o.DigestBacklog = testChunk })
	content := data(6*testChunk, 17)
	c := e.init(t, "pf/gap.bin", len(content))
	for _, n := range []int{1, 2, 3, 4, 5, 0} {
		start := time.Now()
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		if d := time.Since(start); d > digestLagWait/2 {
			t.Fatalf("part %d took %v: it waited for a digest that cannot move", n, d)
		}
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete || u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("complete: %+v %v", u, err)
	}
}

// cutReader is a part body whose reads fail once Interrupt was called, as the API's are.
type cutReader struct {
	r   io.Reader
	cut atomic.Bool
}

func (c *cutReader) Read(b []byte) (int, error) {
	if c.cut.Load() {
		return 0, errors.New("interrupted")
	}
	return c.r.Read(b)
}

// A write waiting for the digest before it reads its body gives way at once to a newer
// write of the same part (part_superseded), instead of making that one wait and get 429.
func TestPartFilesWaitGivesWayToNewerWrite(t *testing.T) {
	e := newPartFilesEnv(t, func(o *Options) { o.DigestBacklog = testChunk })
	gate := holdDigestReads(e)
	content := data(6*testChunk, 18)
	c := e.init(t, "pf/giveway.bin", len(content))
	// Part 0 last (hashed as it arrives): 3 KiB behind it, twice DigestBacklog is 2 KiB.
	for _, n := range []int{1, 2, 3, 0} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
	waitBacklog(t, e, c, 3*testChunk)
	claims, err := e.tokens.Verify(c.Tokens[4])
	if err != nil {
		t.Fatal(err)
	}
	put := func() (*Stored, error) {
		body := &cutReader{r: bytes.NewReader(content[4*testChunk : 5*testChunk])}
		return e.svc.PutPart(context.Background(), PartRequest{UploadID: c.Upload.ID, Part: 4, Claims: claims,
			Body: body, ContentLength: testChunk, Interrupt: func() { body.cut.Store(true) }})
	}
	first := make(chan error, 1)
	go func() { _, err := put(); first <- err }()
	select {
	case err := <-first:
		t.Fatalf("part 4 was taken (%v) while the digest was 3 KiB behind, twice DigestBacklog is 2 KiB", err)
	case <-time.After(200 * time.Millisecond): // the first write waits for the digest
	}
	second := make(chan error, 1)
	go func() { _, err := put(); second <- err }()
	select {
	case err := <-first:
		wantCode(t, err, host.CodePartSuperseded)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting write did not give way to the newer one within 5 s")
	}
	close(gate)
	if err := <-second; err != nil {
		t.Fatalf("the newer write: %v", err)
	}
	if _, err := e.put(t, c, content, 5); err != nil {
		t.Fatalf("part 5: %v", err)
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete || u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("complete: %+v %v", u, err)
	}
}

// waitBacklog waits until the pump of c has taken in the parts stored so far: want bytes
// of them ready for the digest.
func waitBacklog(t *testing.T, e *env, c *Created, want int64) {
	t.Helper()
	p := e.svc.pumpFor(c.Upload.ID, c.Upload.Key())
	for deadline := time.Now().Add(5 * time.Second); p.backlog(want+1) != want; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the digest's backlog is %d bytes, want %d", p.backlog(want+1), want)
		}
	}
}

// Parts written in place before part files were turned off for new parts (a host
// restarted with PLUGIN_PART_FILES=false) are still read back for the digest: complete
// takes them, and only the later parts are staged.
func TestPartFilesReadBackAfterTurnedOff(t *testing.T) {
	e := newPartFilesEnv(t)
	content := data(3*testChunk+100, 19)
	c := e.init(t, "pf/off.bin", len(content))
	for _, n := range []int{1, 2} { // part 0 missing: the digest cannot read them yet
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
	e.backend.mu.Lock()
	e.backend.noNewPartFiles = true
	e.backend.mu.Unlock()
	for _, n := range []int{0, 3} {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete || u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if puts, recorded := e.backend.counts(); recorded != 2 || puts != 2 {
		t.Errorf("%d parts recorded in place and %d put, want 2 and 2", recorded, puts)
	}
}

// holdDigestReads makes the digest unable to read a part back until the returned channel
// is closed.
func holdDigestReads(e *env) chan struct{} {
	gate := make(chan struct{})
	e.backend.mu.Lock()
	e.backend.partFileReads = gate
	e.backend.mu.Unlock()
	return gate
}

// A part the plugin refuses to record (an error a resend would not change) is answered
// 500, and the upload's parts are staged from then on: the resend is taken.
func TestPartFilesRecordRefused(t *testing.T) {
	e := newPartFilesEnv(t)
	content := data(2*testChunk, 20)
	c := e.init(t, "pf/refused.bin", len(content))
	e.backend.mu.Lock()
	e.backend.refuseRecord = fmt.Errorf("%w: the plugin's part size is not the host's", sdk.ErrSizeMismatch)
	e.backend.mu.Unlock()
	_, err := e.put(t, c, content, 0)
	wantCode(t, err, host.CodeInternal)
	for n := range 2 {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d after the refusal: %v", n, err)
		}
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete || u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if puts, _ := e.backend.counts(); puts != 2 {
		t.Errorf("%d parts sent with PutPart after the refusal, want both", puts)
	}
}

// A part that comes after a late part 0 (which makes every part behind it ready for the
// digest at once) waits for the digest to take in one part, not for the whole backlog.
func TestPartFilesLatePartZeroPacesOnePart(t *testing.T) {
	const perPart = 400 * time.Millisecond
	e := newPartFilesEnv(t, func(o *Options) { o.DigestBacklog = testChunk })
	content := data(8*testChunk, 21)
	c := e.init(t, "pf/late0.bin", len(content))
	for n := 1; n <= 6; n++ {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
	e.backend.mu.Lock()
	e.backend.partFileReadDelay = perPart // the digest now takes perPart for each part
	e.backend.mu.Unlock()
	if _, err := e.put(t, c, content, 0); err != nil {
		t.Fatal(err)
	}
	waitBacklog(t, e, c, 6*testChunk) // part 0 was hashed as it arrived
	start := time.Now()
	if _, err := e.put(t, c, content, 7); err != nil {
		t.Fatal(err)
	}
	// Draining the backlog to twice DigestBacklog would take 4 parts' reads (1.6 s).
	if d := time.Since(start); d > 3*perPart {
		t.Errorf("the part after a late part 0 waited %v, want about one part's digest (%v)", d, perPart)
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete || u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("complete: %+v %v", u, err)
	}
}

// Parts written in place in order feed the whole-file digest as they arrive: each is in
// the digest when its PUT returns, and complete needs no read of the part file (reads of
// it are held here for the whole test).
func TestPartFilesInOrderHashedOnArrival(t *testing.T) {
	e := newPartFilesEnv(t)
	gate := holdDigestReads(e)
	defer close(gate)
	content := data(4*testChunk+17, 22)
	c := e.init(t, "pf/inline.bin", len(content))
	for n := range 5 {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		if got := e.status(t, c.Upload.ID).Upload.HashedParts; got != n+1 {
			t.Fatalf("%d parts in the digest after part %d returned, want %d", got, n, n+1)
		}
	}
	if u := e.completeAs(t, c, content); u.DeliveredSHA256 != hexSum(content) { // no read back: it would hang
		t.Fatalf("digest %s, want %s", u.DeliveredSHA256, hexSum(content))
	}
}

// A part write that fed the digest and failed (its body cut short, its checksum header
// wrong) leaves the digest where it was: the part sent again feeds it from there, and the
// file's digest is that of the bytes finally stored.
func TestPartFilesFailedWriteLeavesDigest(t *testing.T) {
	e := newPartFilesEnv(t)
	gate := holdDigestReads(e)
	defer close(gate)
	content := data(3*testChunk, 23)
	c := e.init(t, "pf/inline-fail.bin", len(content))
	if _, err := e.put(t, c, content, 0); err != nil {
		t.Fatal(err)
	}
	claims, err := e.tokens.Verify(c.Tokens[1])
	if err != nil {
		t.Fatal(err)
	}
	part := content[testChunk : 2*testChunk]
	wrong := bytes.Repeat([]byte{0xee}, testChunk)
	_, err = e.svc.PutPart(context.Background(), PartRequest{UploadID: c.Upload.ID, Part: 1, Claims: claims,
		Body: bytes.NewReader(wrong[:testChunk/2]), ContentLength: -1})
	wantCode(t, err, host.CodePartSizeMismatch)
	sum := sha256.Sum256(part)
	_, err = e.svc.PutPart(context.Background(), PartRequest{UploadID: c.Upload.ID, Part: 1, Claims: claims,
		Body: bytes.NewReader(wrong), ContentLength: testChunk, SHA256: sum[:]})
	wantCode(t, err, host.CodeChecksumMismatch)
	if got := e.status(t, c.Upload.ID).Upload.HashedParts; got != 1 {
		t.Fatalf("%d parts in the digest after two failed writes of part 1, want 1", got)
	}
	for n := 1; n < 3; n++ {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
	if u := e.completeAs(t, c, content); u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("digest %s, want %s", u.DeliveredSHA256, hexSum(content))
	}
}

// Each part the digest takes in lets one waiting part write go on, not every write
// waiting: with several parts in flight the digest's lag stays bounded.
func TestPartFilesDigestPacesEachWrite(t *testing.T) {
	e := newPartFilesEnv(t, func(o *Options) { o.DigestBacklog = testChunk })
	gate := holdDigestReads(e)
	content := data(8*testChunk, 24)
	c := e.init(t, "pf/pace.bin", len(content))
	for _, n := range []int{1, 2, 3, 4, 0} { // part 0 last: 4 KiB behind, twice DigestBacklog is 2 KiB
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
	waitBacklog(t, e, c, 4*testChunk)
	done := make(chan int, 3)
	for _, n := range []int{5, 6, 7} {
		go func() {
			if _, err := e.put(t, c, content, n); err != nil {
				t.Errorf("part %d: %v", n, err)
			}
			done <- n
		}()
	}
	p := e.svc.pumpFor(c.Upload.ID, c.Upload.Key())
	waitFor(t, "three writes waiting for the digest", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.digestWaiters == 3
	})
	gate <- struct{}{} // the digest reads one part back
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("no write went on after the digest took in a part")
	}
	select {
	case n := <-done:
		t.Fatalf("part %d went on too: one part digested let two writes go on", n)
	case <-time.After(300 * time.Millisecond):
	}
	close(gate)
	for range 2 {
		<-done
	}
	e.completeAs(t, c, content)
}

// A pump whose digest a part write feeds does not exit idle meanwhile: the write advances
// the digest of the pump that goes on.
func TestPartFilesClaimKeepsPump(t *testing.T) {
	e := newPartFilesEnv(t)
	content := data(3*testChunk, 25)
	c := e.init(t, "pf/claim-keeps.bin", len(content))
	pr, pw := io.Pipe()
	claims, err := e.tokens.Verify(c.Tokens[0])
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.PutPart(context.Background(), PartRequest{UploadID: c.Upload.ID, Part: 0, Claims: claims,
			Body: pr, ContentLength: testChunk})
		done <- err
	}()
	if _, err := pw.Write(content[:10]); err != nil {
		t.Fatal(err)
	}
	p := e.svc.pumpFor(c.Upload.ID, c.Upload.Key())
	waitFor(t, "part 0's write feeding the digest", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.hashing })
	if p.exitIfIdle() { // what the idle timer does after pumpIdleExit
		t.Fatal("the pump exited idle while a part write fed its digest")
	}
	if _, err := pw.Write(content[10:testChunk]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for n := 1; n < 3; n++ {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	if e.svc.runningPump(c.Upload.ID) != p {
		t.Fatal("another pump took over the upload")
	}
	e.completeAs(t, c, content)
}

// A pump whose copy of the digest is behind the database's (another pump advanced it)
// takes the database's on its next read, instead of reading the same part again forever.
func TestPartFilesStaleDigestCopy(t *testing.T) {
	e := newPartFilesEnv(t)
	content := data(3*testChunk, 26)
	c := e.init(t, "pf/stale-digest.bin", len(content))
	for n := range 3 {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatal(err)
		}
	}
	p := e.svc.pumpFor(c.Upload.ID, c.Upload.Key())
	p.mu.Lock()
	if p.hashed != 3 {
		p.mu.Unlock()
		t.Fatalf("%d parts in the pump's digest, want 3", p.hashed)
	}
	p.hashed, p.hashState = 1, nil // as if another pump had taken in parts 1 and 2
	p.mu.Unlock()
	p.poke()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := e.svc.Complete(ctx, c.Upload.ID)
	if err != nil || u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("complete with a stale digest in the pump: %+v %v", u, err)
	}
}

// Every part sent by several writers at once, in order (each newer write takes the part
// over from the one in flight, which may have claimed the digest): the file's digest is
// that of the parts, whichever writes won.
func TestPartFilesConcurrentWritesOfEachPart(t *testing.T) {
	e := newPartFilesEnv(t)
	content := data(6*testChunk+9, 27)
	c := e.init(t, "pf/inline-race.bin", len(content))
	for n := range c.Tokens {
		claims, err := e.tokens.Verify(c.Tokens[n])
		if err != nil {
			t.Fatal(err)
		}
		part := content[n*testChunk : min((n+1)*testChunk, len(content))]
		var wg sync.WaitGroup
		var stored atomic.Int32
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := &cutReader{r: iotest.OneByteReader(bytes.NewReader(part))}
				_, err := e.svc.PutPart(context.Background(), PartRequest{UploadID: c.Upload.ID, Part: n, Claims: claims,
					Body: body, ContentLength: int64(len(part)), Interrupt: func() { body.cut.Store(true) }})
				switch {
				case err == nil:
					stored.Add(1)
				case host.ErrorCode(err) == host.CodePartSuperseded, host.ErrorCode(err) == host.CodeTooManyRequests:
				default:
					t.Errorf("part %d: %v", n, err)
				}
			}()
		}
		wg.Wait()
		if stored.Load() == 0 {
			if _, err := e.put(t, c, content, n); err != nil {
				t.Fatalf("part %d after four writes that all gave way: %v", n, err)
			}
		}
	}
	if u := e.completeAs(t, c, content); u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("digest %s, want %s", u.DeliveredSHA256, hexSum(content))
	}
}
