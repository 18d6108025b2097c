package storagetest

import (
	"errors"
	"testing"

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
