package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

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
