package storagetest

import (
	"slices"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

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
