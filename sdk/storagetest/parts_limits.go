package storagetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

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
