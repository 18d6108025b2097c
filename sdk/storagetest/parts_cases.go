package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// partCases are the part-wise cases Run and RunGRPC share.
func partCases() []partCase {
	return []partCase{
		{"RandomOrder", testPartsRandomOrder},
		{"Concurrent", testPartsConcurrent},
		{"Resend", testPartsResend},
		{"WrongBytes", testPartsWrongBytes},
		{"WrongSize", testPartsWrongSize},
		{"FailingReader", testPartsFailingReader},
		{"CommitMissing", testPartsCommitMissing},
		{"StaleReceipt", testPartsStaleReceipt},
		{"Abort", testPartsAbort},
		{"AbortLostHandle", testPartsAbortLostHandle},
		{"BeginAgain", testPartsBeginAgain},
		{"CommitTwice", testPartsCommitTwice},
		{"UnknownHandle", testPartsUnknownHandle},
		{"Reopen", testPartsReopen},
		{"ZeroBytes", testPartsZeroBytes},
		{"OnePart", testPartsOnePart},
		{"Limits", testPartsLimits},
		{"Large", testPartsLarge},
	}
}

// testPartsRandomOrder: parts sent one at a time in a shuffled order, the short last part
// first, make the object; it is not visible before the commit.
func testPartsRandomOrder(t *testing.T, e *partEnv) {
	o := e.object("parts-random/object.bin", "parts-random", 5)
	h := e.begin(t, o)
	order := shuffled(o.spec.PartCount)
	rs := make([][]byte, o.spec.PartCount)
	for i, n := range order {
		rs[n] = e.putPart(t, h, o, n)
		if i == 0 {
			e.checkUnfinished(t, o)
		}
	}
	t.Logf("sent %d parts in the order %v", o.spec.PartCount, order)
	e.checkUnfinished(t, o)
	e.commit(t, h, o, rs)
	e.checkClean(t)
}

// testPartsConcurrent: the parts of two objects, all sent at once, make both objects.
func testPartsConcurrent(t *testing.T, e *partEnv) {
	a := e.object("parts-concurrent/a.bin", "parts-concurrent a", 4)
	b := e.object("parts-concurrent/b.bin", "parts-concurrent b", 4)
	ha, hb := e.begin(t, a), e.begin(t, b)
	var jobs []partJob
	for n := range a.spec.PartCount {
		jobs = append(jobs, partJob{ha, a, n}, partJob{hb, b, n})
	}
	rs := e.putConcurrently(t, 0, jobs)
	ra, rb := make([][]byte, a.spec.PartCount), make([][]byte, b.spec.PartCount)
	for i, j := range jobs {
		if j.o == a {
			ra[j.n] = rs[i]
		} else {
			rb[j.n] = rs[i]
		}
	}
	e.commit(t, hb, b, rb)
	e.commit(t, ha, a, ra)
	e.checkClean(t)
}

// testPartsResend: a part sent again replaces the earlier one. With other bytes the later
// ones win and the earlier receipt is stale; the same bytes sent again, also twice at
// once, leave a usable receipt.
func testPartsResend(t *testing.T, e *partEnv) {
	o := e.object("parts-resend/object.bin", "parts-resend", 4)
	v2 := e.object(o.key, "parts-resend v2", 4)
	h := e.begin(t, o)
	rs := e.putParts(t, h, o)
	old := rs[1]
	rs[1] = e.putPart(t, h, v2, 1)
	want := o.with(1, v2)
	e.failCommit(t, h, want, withReceipt(rs, 1, old), sdk.ErrStaleReceipt, "the receipt of a part since replaced by other bytes")
	rs[0] = e.putPart(t, h, o, 0)

	// The last part twice at once, the same bytes: one of the receipts must commit.
	last := o.spec.PartCount - 1
	twice := e.putConcurrently(t, 0, []partJob{{h, o, last}, {h, o, last}})
	for i, r := range twice {
		obj, err := e.ps.CommitObject(e.ctx, h, withReceipt(rs, last, r), want.sum)
		if err == nil {
			t.Logf("the receipt of concurrent PutPart #%d of the last part committed", i+1)
			e.stored(o.key)
			checkObject(t, "CommitObject", want, obj, true)
			e.checkStored(t, o.key, want.b)
			e.checkClean(t)
			return
		}
		if !errors.Is(err, sdk.ErrStaleReceipt) {
			t.Fatalf("CommitObject with the receipt of concurrent PutPart #%d of the last part: %v", i+1, err)
		}
		t.Logf("the receipt of concurrent PutPart #%d of the last part is stale: %v", i+1, err)
	}
	t.Fatal("neither receipt of the last part, sent twice at once with the same bytes, commits")
}

// testPartsWrongBytes: a part whose bytes do not match its SHA-256 is refused with
// ErrDigestMismatch and is absent afterwards.
func testPartsWrongBytes(t *testing.T, e *partEnv) {
	o := e.object("parts-wrongbytes/object.bin", "parts-wrongbytes", 3)
	h := e.begin(t, o)
	rs := e.putParts(t, h, o)
	n := min(1, o.spec.PartCount-1)
	bad := bytes.Clone(o.part(n))
	bad[len(bad)/2] ^= 0x01
	e.failPart(t, e.ctx, e.ps, h, o, rs, o.info(n), bytes.NewReader(bad), sdk.ErrDigestMismatch, "one byte changed")
	p := o.info(0)
	p.SHA256 = flipFirstByte(p.SHA256)
	e.failPart(t, e.ctx, e.ps, h, o, rs, p, bytes.NewReader(o.part(0)), sdk.ErrDigestMismatch, "a SHA-256 that is not its bytes'")
	last := o.spec.PartCount - 1
	e.failPart(t, e.ctx, e.ps, h, o, rs, o.info(last), bytes.NewReader(garble(o.part(last))), sdk.ErrDigestMismatch, "every byte changed")
	e.commit(t, h, o, rs)
	e.checkClean(t)
}

// testPartsWrongSize: a part shorter or longer than its size is refused with
// ErrSizeMismatch and is absent afterwards; a part whose declared size is not the object's
// size for its number is refused with ErrSizeMismatch, and a part number outside the
// object is refused; none of it changes the object.
func testPartsWrongSize(t *testing.T, e *partEnv) {
	o := e.object("parts-wrongsize/object.bin", "parts-wrongsize", 3)
	h := e.begin(t, o)
	rs := e.putParts(t, h, o)
	n, last := min(1, o.spec.PartCount-1), o.spec.PartCount-1
	part := o.part(n)
	e.failPart(t, e.ctx, e.ps, h, o, rs, o.info(n), bytes.NewReader(part[:len(part)-1]), sdk.ErrSizeMismatch, "one byte less than its size")
	e.failPart(t, e.ctx, e.ps, h, o, rs, o.info(n), bytes.NewReader(append(bytes.Clone(part), 0)), sdk.ErrSizeMismatch, "one byte more than its size")
	e.failPart(t, e.ctx, e.ps, h, o, rs, o.info(n), bytes.NewReader(nil), sdk.ErrSizeMismatch, "no bytes")

	// Declared sizes that do not fit the object; the parts are sent again after each.
	first := o.part(0)[:o.spec.PartSizeOf(0)-1]
	_, err := e.ps.PutPart(e.ctx, h, partInfo(0, first), bytes.NewReader(first))
	wantErr(t, fmt.Sprintf("PutPart(%q part 0) of %d bytes where the object's part 0 has %d", o.key, len(first), o.spec.PartSizeOf(0)), err, sdk.ErrSizeMismatch)
	full := data("parts-wrongsize full", int(o.spec.PartSize))
	if o.spec.PartSizeOf(last) != o.spec.PartSize {
		_, err = e.ps.PutPart(e.ctx, h, partInfo(last, full), bytes.NewReader(full))
		wantErr(t, fmt.Sprintf("PutPart(%q last part %d) of %d bytes where it has %d", o.key, last, len(full), o.spec.PartSizeOf(last)), err, sdk.ErrSizeMismatch)
	}
	for _, beyond := range []int{o.spec.PartCount, o.spec.PartCount + 1, -1} {
		_, err = e.ps.PutPart(e.ctx, h, partInfo(beyond, full), bytes.NewReader(full))
		wantErr(t, fmt.Sprintf("PutPart(%q part %d) of an object of %d parts", o.key, beyond, o.spec.PartCount), err, nil)
	}
	if e.settle != nil {
		e.settle(t)
	}
	e.checkUnfinished(t, o)
	rs[0], rs[last] = e.putPart(t, h, o, 0), e.putPart(t, h, o, last)
	e.commit(t, h, o, rs)
	e.checkClean(t)
}

// testPartsFailingReader: a part whose reader fails, or whose context is cancelled, fails
// and is absent afterwards (over gRPC a cancelled call may not reach the plugin at all, so
// there the earlier part may stay).
func testPartsFailingReader(t *testing.T, e *partEnv) {
	o := e.object("parts-failing/object.bin", "parts-failing", 3)
	h := e.begin(t, o)
	rs := e.putParts(t, h, o)
	n := min(1, o.spec.PartCount-1)
	part := o.part(n)
	e.failPart(t, e.ctx, e.ps, h, o, rs, o.info(n), iotest.ErrReader(errBoom), nil, "a reader failing at once")
	e.failPart(t, e.ctx, e.ps, h, o, rs, o.info(n), io.MultiReader(bytes.NewReader(part[:len(part)/2+5]), iotest.ErrReader(errBoom)), nil, "a reader failing midway")
	e.failPart(t, e.ctx, e.ps, h, o, rs, o.info(n), &errAfter{b: part, n: len(part) - 1}, nil, "a reader failing with its data")
	for what, after := range map[string]int{"its context cancelled midway": len(part)/2 + 1, "its context cancelled at the end": len(part)} {
		ctx, cancel := context.WithCancel(e.ctx)
		r := &cancelReader{r: bytes.NewReader(part), after: after, cancel: cancel}
		if e.wire == nil {
			e.failPart(t, ctx, e.ps, h, o, rs, o.info(n), r, context.Canceled, what)
		} else {
			// A call cancelled on the host's side may never reach the plugin, whose earlier
			// part then stays: the host sends the part again, as here.
			_, err := e.ps.PutPart(ctx, h, o.info(n), r)
			wantErr(t, fmt.Sprintf("PutPart(%q part %d) with %s", o.key, n, what), err, context.Canceled)
			e.checkUnfinished(t, o)
			rs[n] = e.putPart(t, h, o, n)
		}
		cancel()
	}
	e.commit(t, h, o, rs)
	e.checkClean(t)
}

// testPartsCommitMissing: a commit without a receipt for every part, or with one too many,
// fails with ErrStaleReceipt and shows nothing; the handle stays usable.
func testPartsCommitMissing(t *testing.T, e *partEnv) {
	o := e.object("parts-missing/object.bin", "parts-missing", 4)
	h := e.begin(t, o)
	count := o.spec.PartCount
	miss := count / 2
	e.failCommit(t, h, o, nil, sdk.ErrStaleReceipt, "no receipts before any part was sent")
	rs := e.putParts(t, h, o, slices.Delete(seq(count), miss, miss+1)...)
	e.failCommit(t, h, o, rs, sdk.ErrStaleReceipt, fmt.Sprintf("an empty receipt for part %d, never sent", miss))
	e.failCommit(t, h, o, slices.Delete(slices.Clone(rs), miss, miss+1), sdk.ErrStaleReceipt, fmt.Sprintf("%d receipts for %d parts", count-1, count))
	e.failCommit(t, h, o, [][]byte{}, sdk.ErrStaleReceipt, "no receipts")
	rs[miss] = e.putPart(t, h, o, miss)
	e.failCommit(t, h, o, append(slices.Clone(rs), rs[0]), sdk.ErrStaleReceipt, fmt.Sprintf("%d receipts for %d parts", count+1, count))
	e.failCommit(t, h, o, rs[:count-1], sdk.ErrStaleReceipt, "no receipt for the last part")
	e.commit(t, h, o, rs)
	e.checkClean(t)
}

// testPartsStaleReceipt: a commit with a receipt of another part, of another object or
// garbled fails with ErrStaleReceipt, leaving the object stored under the key before; the
// handle stays usable and its commit replaces that object.
func testPartsStaleReceipt(t *testing.T, e *partEnv) {
	o := e.object("parts-stale/object.bin", "parts-stale", 4)
	e.priorObject(t, o, data("parts-stale prior", 1000))
	q := e.object("parts-stale/other.bin", "parts-stale other", 4)
	ho, hq := e.begin(t, o), e.begin(t, q)
	ro, rq := e.putParts(t, ho, o), e.putParts(t, hq, q)
	last := o.spec.PartCount - 1
	if last > 0 {
		swapped := slices.Clone(ro)
		swapped[0], swapped[last] = ro[last], ro[0]
		e.failCommit(t, ho, o, swapped, sdk.ErrStaleReceipt, "the receipts of the first and last part swapped")
	}
	e.failCommit(t, ho, o, withReceipt(ro, last, rq[last]), sdk.ErrStaleReceipt, "the last part's receipt from another object")
	e.failCommit(t, ho, o, withReceipt(ro, 0, garble(ro[0])), sdk.ErrStaleReceipt, "a garbled receipt")
	e.failCommit(t, ho, o, withReceipt(ro, 0, data("parts-stale garbage", 16)), sdk.ErrStaleReceipt, "16 bytes of garbage as a receipt")
	e.commit(t, ho, o, ro)
	e.abort(t, q, hq)
	e.checkAborted(t, q)
}

// testPartsAbort: after AbortObject nothing of the object is left, its handle is unknown
// to PutPart and CommitObject, aborting again is not an error, and an object stored under
// the key before stays.
func testPartsAbort(t *testing.T, e *partEnv) {
	o := e.object("parts-abort/object.bin", "parts-abort", 3)
	h := e.begin(t, o)
	rs := e.putParts(t, h, o)
	e.abort(t, o, h)
	e.checkAborted(t, o)
	_, err := e.tryPart(e.ps, h, o, 0)
	wantErr(t, "PutPart after AbortObject", err, sdk.ErrNotFound)
	_, err = e.ps.CommitObject(e.ctx, h, rs, o.sum)
	wantErr(t, "CommitObject after AbortObject", err, sdk.ErrNotFound)
	e.abort(t, o, h)
	e.abort(t, o, nil)
	e.checkAborted(t, o)

	fresh := e.object("parts-abort/no-parts.bin", "parts-abort no parts", 2)
	e.abort(t, fresh, e.begin(t, fresh))
	e.checkAborted(t, fresh)

	over := e.object("parts-abort/existing.bin", "parts-abort existing", 3)
	e.priorObject(t, over, data("parts-abort prior", 5000))
	h = e.begin(t, over)
	e.putParts(t, h, over)
	e.checkUnfinished(t, over)
	e.abort(t, over, h)
	e.checkAborted(t, over)
}

// testPartsAbortLostHandle: AbortObject with a nil handle removes every unfinished object
// under its key, whose handle the host never recorded, and nothing else: not the
// unfinished object under a key it is a prefix of, nor a stored object.
func testPartsAbortLostHandle(t *testing.T, e *partEnv) {
	lost := e.object("parts-lost/object", "parts-lost", 3)
	keep := e.object("parts-lost/object.bin", "parts-lost keep", 3)
	stored := e.object("parts-lost/stored.bin", "parts-lost stored", 2)
	e.abort(t, lost, nil) // nothing there yet
	hs := e.begin(t, stored)
	e.commit(t, hs, stored, e.putParts(t, hs, stored))
	hk := e.begin(t, keep)
	rk := e.putParts(t, hk, keep)
	before := e.list(t)
	hl := e.begin(t, lost)
	rl := e.putParts(t, hl, lost)
	e.abort(t, lost, nil)
	e.checkUnfinished(t, lost)
	if after := e.list(t); !slices.Equal(after, before) {
		t.Errorf("List after AbortObject(%q, nil) = %q, want what it was before that object began: %q", lost.key, after, before)
	}
	_, err := e.tryPart(e.ps, hl, lost, 0)
	wantErr(t, "PutPart with the lost handle after AbortObject(key, nil)", err, sdk.ErrNotFound)
	_, err = e.ps.CommitObject(e.ctx, hl, rl, lost.sum)
	wantErr(t, "CommitObject with the lost handle after AbortObject(key, nil)", err, sdk.ErrNotFound)
	e.abort(t, lost, nil)
	e.abort(t, stored, nil)
	e.checkStored(t, stored.key, stored.b)
	e.commit(t, hk, keep, rk)
	e.checkAborted(t, lost)
}

// testPartsBeginAgain: BeginObject aborts the unfinished object under the same key: its
// handle is unknown afterwards, also once the new object is committed, and nothing of it
// is left.
func testPartsBeginAgain(t *testing.T, e *partEnv) {
	first := e.object("parts-again/object.bin", "parts-again first", 4)
	second := e.object(first.key, "parts-again second", 3)
	h1 := e.begin(t, first)
	r1 := e.putParts(t, h1, first)
	h2 := e.begin(t, second)
	_, err := e.tryPart(e.ps, h1, first, 0)
	wantErr(t, "PutPart with the handle of an object begun again", err, sdk.ErrNotFound)
	_, err = e.ps.CommitObject(e.ctx, h1, r1, first.sum)
	wantErr(t, "CommitObject with the handle of an object begun again", err, sdk.ErrNotFound)
	e.checkUnfinished(t, first)
	e.commit(t, h2, second, e.putParts(t, h2, second))
	e.checkClean(t)
	_, err = e.ps.CommitObject(e.ctx, h1, r1, first.sum)
	wantErr(t, "CommitObject with the replaced handle after the new object's commit", err, sdk.ErrNotFound)
	_, err = e.tryPart(e.ps, h1, first, 1)
	wantErr(t, "PutPart with the replaced handle after the new object's commit", err, sdk.ErrNotFound)
	e.checkStored(t, second.key, second.b)
	e.checkClean(t)
}

// testPartsCommitTwice: committing again reports the object; a PutPart or an AbortObject
// after the commit leaves it as it is.
func testPartsCommitTwice(t *testing.T, e *partEnv) {
	o := e.object("parts-twice/object.bin", "parts-twice", 3)
	h := e.begin(t, o)
	rs := e.putParts(t, h, o)
	obj := e.commit(t, h, o, rs)
	again, err := e.ps.CommitObject(e.ctx, h, rs, o.sum)
	if err != nil {
		t.Fatalf("CommitObject again: %v", err)
	}
	checkObject(t, "CommitObject again", o, again, false)
	if again.Location != obj.Location {
		t.Errorf("CommitObject again returned Location %q, the first commit %q", again.Location, obj.Location)
	}
	_, err = e.ps.PutPart(e.ctx, h, o.info(0), bytes.NewReader(garble(o.part(0))))
	wantErr(t, "PutPart after the commit", err, nil)
	_, err = e.tryPart(e.ps, h, o, 0)
	wantErr(t, "PutPart after the commit", err, nil)
	e.abort(t, o, h)
	e.abort(t, o, nil)
	e.checkStored(t, o.key, o.b)
	e.checkClean(t)
}

// testPartsUnknownHandle: handles the backend never gave are refused with ErrNotFound by
// PutPart and CommitObject, and AbortObject with them removes nothing; the real object is
// not disturbed.
func testPartsUnknownHandle(t *testing.T, e *partEnv) {
	o := e.object("parts-unknown/object.bin", "parts-unknown", 2)
	h := e.begin(t, o)
	rs := e.putParts(t, h, o)
	forged := map[string][]byte{
		"every byte changed":  garble(h),
		"32 bytes of garbage": data("parts-unknown garbage", 32),
		"a path outside":      []byte("../../../../../../../storagetest-outside-the-root/x"),
	}
	if len(h) > 1 {
		forged["its first half"] = h[:len(h)/2]
	}
	if e.wire == nil {
		forged["empty"] = []byte{}
	}
	for what, f := range forged {
		_, err := e.ps.PutPart(e.ctx, f, o.info(0), bytes.NewReader(o.part(0)))
		wantErr(t, fmt.Sprintf("PutPart with a handle of %s", what), err, sdk.ErrNotFound)
		_, err = e.ps.CommitObject(e.ctx, f, rs, o.sum)
		wantErr(t, fmt.Sprintf("CommitObject with a handle of %s", what), err, sdk.ErrNotFound)
		if len(f) > 0 {
			if err := e.ps.AbortObject(e.ctx, o.key, f); err != nil && !errors.Is(err, sdk.ErrNotFound) {
				t.Errorf("AbortObject with a handle of %s: %v, want nil or an error wrapping sdk.ErrNotFound", what, err)
			}
		}
	}
	e.checkUnfinished(t, o)
	e.commit(t, h, o, rs)
	e.checkClean(t)
}

// testPartsReopen: handles and receipts stay valid across a restart of the plugin: parts
// sent before and after it make the object, an object begun before can be aborted after,
// also with a nil handle, and a commit made before is reported again after.
func testPartsReopen(t *testing.T, e *partEnv) {
	if e.restart == nil {
		t.Skip("Options.Reopen is not set: handles and receipts are not checked across a restart of the plugin")
	}
	a := e.object("parts-reopen/a.bin", "parts-reopen a", 4)
	a2 := e.object(a.key, "parts-reopen a v2", 4)
	b := e.object("parts-reopen/b.bin", "parts-reopen b", 3)
	c := e.object("parts-reopen/c.bin", "parts-reopen c", 2)
	d := e.object("parts-reopen/d.bin", "parts-reopen d", 2)
	ha, hb, hc, hd := e.begin(t, a), e.begin(t, b), e.begin(t, c), e.begin(t, d)
	half := a.spec.PartCount / 2
	ra := make([][]byte, a.spec.PartCount)
	copy(ra, e.putParts(t, ha, a, seq(half)...))
	e.putParts(t, hb, b)
	rc := e.putParts(t, hc, c)
	objC := e.commit(t, hc, c, rc)
	e.putPart(t, hd, d, 0)

	e = e.restart(t)
	t.Log("restarted: the cases go on with a new instance from Options.Reopen")
	for n := half; n < a.spec.PartCount; n++ {
		ra[n] = e.putPart(t, ha, a, n)
	}
	old := ra[0]
	ra[0] = e.putPart(t, ha, a2, 0)
	want := a.with(0, a2)
	e.failCommit(t, ha, want, withReceipt(ra, 0, old), sdk.ErrStaleReceipt, "a receipt from before the restart of a part replaced after it")
	e.commit(t, ha, want, ra)
	again, err := e.ps.CommitObject(e.ctx, hc, rc, c.sum)
	if err != nil {
		t.Fatalf("CommitObject after the restart of an object committed before it: %v", err)
	}
	checkObject(t, "CommitObject after the restart", c, again, false)
	if again.Location != objC.Location {
		t.Errorf("CommitObject after the restart returned Location %q, before it %q", again.Location, objC.Location)
	}
	e.abort(t, b, hb)
	e.checkUnfinished(t, b)
	e.abort(t, d, nil)
	e.checkAborted(t, d)
	e.checkStored(t, c.key, c.b)
}

// testPartsZeroBytes: an empty object has no parts; committing it with no receipts makes an
// empty object. A backend may decline it (ErrNotSupported): the host uses Put.
func testPartsZeroBytes(t *testing.T, e *partEnv) {
	o := splitObject("parts-zero/empty.bin", nil, e.partSize())
	e.use(o.key)
	h, err := e.ps.BeginObject(e.ctx, o.key, o.spec)
	if errors.Is(err, sdk.ErrNotSupported) {
		e.checkClean(t)
		t.Skipf("BeginObject declines an empty object, which the host then stores with Put: %v", err)
	}
	if err != nil {
		t.Fatalf("BeginObject(%q) of an empty object: %v", o.key, err)
	}
	e.failCommit(t, h, o, [][]byte{data("parts-zero garbage", 16)}, sdk.ErrStaleReceipt, "a receipt for an object without parts")
	e.commit(t, h, o, nil)
	e.checkClean(t)
}

// testPartsOnePart: objects of a single part: one byte, exactly a part, and below the
// backend's minimum part size, which binds only parts but the last.
func testPartsOnePart(t *testing.T, e *partEnv) {
	ps := e.partSize()
	for _, size := range []int64{1, ps, ps/3 + 1} {
		key := fmt.Sprintf("parts-one/%d.bin", size)
		o := splitObject(key, data(key, int(size)), ps)
		h := e.begin(t, o)
		e.commit(t, h, o, e.putParts(t, h, o))
	}
	e.checkClean(t)
}

// limitBytes and manyParts bound the objects testPartsLimits makes to reach a backend's
// limits.
const (
	limitBytes = 64 << 20
	manyParts  = 64
)

// testPartsLimits: objects at the backend's PartLimits are stored: parts of exactly the
// minimum size, and the most parts where that stays within limitBytes and manyParts (else
// manyParts parts, where that stays within limitBytes). Over gRPC, the sdk declines objects outside the limits with
// ErrNotSupported and refuses inconsistent ones before the backend sees them.
func testPartsLimits(t *testing.T, e *partEnv) {
	l := e.limits
	t.Logf("PartLimits %+v", l)
	minSize := max(l.MinPartSize, 1)
	atMin := func(key string, parts int64) {
		o := splitObject(key, data(key, int(minSize*(parts-1)+1)), minSize)
		h := e.begin(t, o)
		var jobs []partJob
		for n := range o.spec.PartCount {
			jobs = append(jobs, partJob{h, o, n})
		}
		e.commit(t, h, o, e.putConcurrently(t, 8, jobs))
	}
	parts := int64(4)
	if l.MaxParts > 0 {
		parts = min(parts, l.MaxParts)
	}
	atMin("parts-limits/min-size.bin", parts)
	switch {
	case l.MaxParts > 0 && l.MaxParts <= manyParts && (l.MaxParts-1)*minSize+1 <= limitBytes:
		atMin("parts-limits/max-parts.bin", l.MaxParts)
	case l.MaxParts > 0 && l.MaxParts <= manyParts:
		t.Logf("%d parts of %d bytes exceed %d bytes: the most parts are not tried", l.MaxParts, minSize, limitBytes)
	case (manyParts-1)*minSize+1 <= limitBytes:
		if l.MaxParts > 0 {
			t.Logf("the most parts, %d, are more than %d: %d parts are tried", l.MaxParts, manyParts, manyParts)
		}
		atMin("parts-limits/many-parts.bin", manyParts)
	default:
		t.Logf("%d parts of %d bytes exceed %d bytes: many parts are not tried", manyParts, minSize, limitBytes)
	}
	e.checkClean(t)
	if e.wire == nil {
		t.Log("objects outside PartLimits are checked over gRPC only: the sdk declines them before the backend")
		return
	}
	outside := map[string]sdk.ObjectSpec{}
	if l.MinPartSize > 1 {
		s := l.MinPartSize - 1
		outside["parts below the minimum size"] = sdk.ObjectSpec{Size: 2 * s, PartSize: s, PartCount: 2}
	}
	if l.MaxParts > 0 {
		n := l.MaxParts + 1
		outside["one part more than the maximum"] = sdk.ObjectSpec{Size: n * minSize, PartSize: minSize, PartCount: int(n)}
	}
	if len(outside) == 0 {
		t.Log("the backend has no limits: no object is outside them")
	}
	const key = "parts-limits/outside.bin"
	e.use(key)
	for what, spec := range outside {
		_, err := e.ps.BeginObject(e.ctx, key, spec)
		wantErr(t, fmt.Sprintf("BeginObject with %s (%+v)", what, spec), err, sdk.ErrNotSupported)
	}
	for what, spec := range map[string]sdk.ObjectSpec{
		"a part count that does not match": {Size: 3*minSize + 1, PartSize: minSize, PartCount: 3},
		"a negative size":                  {Size: -1, PartSize: minSize, PartCount: 0},
		"a part size of 0":                 {Size: 0, PartSize: 0, PartCount: 0},
		"a SHA-256 of 31 bytes":            {Size: 1, PartSize: minSize, PartCount: 1, SHA256: make([]byte, 31)},
	} {
		_, err := e.ps.BeginObject(e.ctx, key, spec)
		wantErr(t, fmt.Sprintf("BeginObject with %s (%+v)", what, spec), err, nil)
	}
	e.checkClean(t)
}
