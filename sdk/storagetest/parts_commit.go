package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

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
