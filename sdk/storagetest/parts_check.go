package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// begin starts o part-wise and returns its handle.
func (e *partEnv) begin(t *testing.T, o *partObject) []byte {
	t.Helper()
	e.use(o.key)
	h, err := e.ps.BeginObject(e.ctx, o.key, o.spec)
	if err != nil {
		t.Fatalf("BeginObject(%q, %d bytes in %d parts of %d): %v", o.key, o.spec.Size, o.spec.PartCount, o.spec.PartSize, err)
	}
	if len(h) == 0 || len(h) > sdk.MaxHandleSize {
		t.Fatalf("BeginObject(%q) returned a handle of %d bytes (1 to %d allowed)", o.key, len(h), sdk.MaxHandleSize)
	}
	return h
}

// tryPart sends part n of o.
func (e *partEnv) tryPart(ps sdk.PartStorage, h []byte, o *partObject, n int) ([]byte, error) {
	r, err := ps.PutPart(e.ctx, h, o.info(n), bytes.NewReader(o.part(n)))
	if err == nil && (len(r) == 0 || len(r) > sdk.MaxReceiptSize) {
		err = fmt.Errorf("PutPart returned a receipt of %d bytes (1 to %d allowed)", len(r), sdk.MaxReceiptSize)
	}
	if err != nil {
		return nil, fmt.Errorf("PutPart(%q part %d of %d): %w", o.key, n, o.spec.PartCount, err)
	}
	return r, nil
}

// putPart sends part n of o and returns its receipt.
func (e *partEnv) putPart(t *testing.T, h []byte, o *partObject, n int) []byte {
	t.Helper()
	r, err := e.tryPart(e.ps, h, o, n)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// putParts sends the parts of o one after another, in order unless order is given, and
// returns the receipts (nil for parts not sent).
func (e *partEnv) putParts(t *testing.T, h []byte, o *partObject, order ...int) [][]byte {
	t.Helper()
	if order == nil {
		order = seq(o.spec.PartCount)
	}
	rs := make([][]byte, o.spec.PartCount)
	for _, n := range order {
		rs[n] = e.putPart(t, h, o, n)
	}
	return rs
}

// partJob is one PutPart of a concurrent batch.
type partJob struct {
	h []byte
	o *partObject
	n int
}

// putConcurrently sends the parts of jobs, at most workers at a time (0: all at once), and
// returns their receipts in the order of jobs.
func (e *partEnv) putConcurrently(t *testing.T, workers int, jobs []partJob) [][]byte {
	t.Helper()
	if workers <= 0 {
		workers = len(jobs)
	}
	rs := make([][]byte, len(jobs))
	errs := make([]error, len(jobs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(jobs)) {
		wg.Go(func() {
			for i := range next {
				rs[i], errs[i] = e.tryPart(e.ps, jobs[i].h, jobs[i].o, jobs[i].n)
			}
		})
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent PutPart: %v", err)
	}
	return rs
}

// commit commits o and checks the Object it returns, then what Stat and ReadBack show.
func (e *partEnv) commit(t *testing.T, h []byte, o *partObject, rs [][]byte) sdk.Object {
	t.Helper()
	obj, err := e.ps.CommitObject(e.ctx, h, rs, o.sum)
	if err != nil {
		t.Fatalf("CommitObject(%q, %d receipts): %v", o.key, len(rs), err)
	}
	e.stored(o.key)
	checkObject(t, "CommitObject", o, obj, true)
	e.checkStored(t, o.key, o.b)
	if st, err := e.s.Stat(e.ctx, o.key); err == nil && st.Location != "" && st.Location != obj.Location {
		t.Errorf("Stat(%q).Location = %q, CommitObject returned %q", o.key, st.Location, obj.Location)
	}
	return obj
}

// checkObject checks what call returned for o: its key, size, location, and its SHA-256
// (which may be unknown unless needSum).
func checkObject(t *testing.T, call string, o *partObject, obj sdk.Object, needSum bool) {
	t.Helper()
	if obj.Key != o.key {
		t.Errorf("%s(%q) returned Key %q", call, o.key, obj.Key)
	}
	if obj.Size != o.spec.Size {
		t.Errorf("%s(%q) returned Size %d, want %d", call, o.key, obj.Size, o.spec.Size)
	}
	if (needSum || obj.SHA256 != nil) && !bytes.Equal(obj.SHA256, o.sum) {
		t.Errorf("%s(%q) returned SHA256 %x, want %x", call, o.key, obj.SHA256, o.sum)
	}
	if obj.Location == "" {
		t.Errorf("%s(%q) returned an empty Location", call, o.key)
	}
}

// failCommit commits o with rs, which must fail with an error wrapping want, and checks
// that nothing became visible.
func (e *partEnv) failCommit(t *testing.T, h []byte, o *partObject, rs [][]byte, want error, what string) {
	t.Helper()
	obj, err := e.ps.CommitObject(e.ctx, h, rs, o.sum)
	if err == nil {
		t.Errorf("CommitObject(%q) with %s succeeded (%+v), want an error wrapping %v", o.key, what, obj, want)
	} else if !errors.Is(err, want) {
		t.Errorf("CommitObject(%q) with %s: got error %v, want one wrapping %v", o.key, what, err, want)
	} else {
		t.Logf("CommitObject(%q) with %s failed as expected: %v", o.key, what, err)
	}
	e.checkUnfinished(t, o)
}

// wantErr checks that err, the result of what, wraps want (is any error if want is nil).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case err == nil && want == nil:
		t.Errorf("%s succeeded, want an error", what)
	case err == nil:
		t.Errorf("%s succeeded, want an error wrapping %v", what, want)
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s: got error %v, want one wrapping %v", what, err, want)
	default:
		t.Logf("%s failed as expected: %v", what, err)
	}
}

// failPart sends p as part n of o from r under ctx, which must fail with an error wrapping
// want (any error if want is nil). Part n is then absent: a commit with its earlier
// receipt rs[n] fails with ErrStaleReceipt and shows nothing. Part n is then sent again
// and rs[n] updated.
func (e *partEnv) failPart(t *testing.T, ctx context.Context, ps sdk.PartStorage, h []byte, o *partObject, rs [][]byte, p sdk.PartInfo, r io.Reader, want error, what string) {
	t.Helper()
	n := p.Number
	_, err := ps.PutPart(ctx, h, p, r)
	wantErr(t, fmt.Sprintf("PutPart(%q part %d) with %s", o.key, n, what), err, want)
	if e.settle != nil {
		e.settle(t)
	}
	e.failCommit(t, h, o, rs, sdk.ErrStaleReceipt, fmt.Sprintf("part %d's receipt from before a failed PutPart of it", n))
	rs[n] = e.putPart(t, h, o, n)
}

// checkUnfinished checks that o's key shows nothing new: Stat and ReadBack give what it
// held before o, if anything, else nothing; List shows every object present and not the
// key unless it was present. Other names in List are the temporaries of unfinished objects.
func (e *partEnv) checkUnfinished(t *testing.T, o *partObject) {
	t.Helper()
	if e.settle != nil {
		e.settle(t)
	}
	if o.hadPrior {
		e.checkStored(t, o.key, o.prior)
	} else {
		if obj, err := e.s.Stat(e.ctx, o.key); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Stat(%q) of an unfinished object = %+v, %v; want an error wrapping sdk.ErrNotFound", o.key, obj, err)
		}
		if e.o.ReadBack != nil {
			if rc, err := e.o.ReadBack(t, o.key); err == nil {
				rc.Close()
				t.Errorf("ReadBack(%q) of an unfinished object found data, want none", o.key)
			}
		}
	}
	if e.o.List == nil {
		return
	}
	extra, missing := e.listDiff(t, e.used, e.present)
	if len(missing) > 0 {
		t.Errorf("List: missing %q (want %q and temporaries)", missing, e.present)
	}
	if slices.Contains(extra, o.key) {
		t.Errorf("List shows %q, an unfinished object", o.key)
	}
	if len(extra) > 0 {
		t.Logf("List shows %d name(s) of unfinished objects: %q", len(extra), extra)
	}
}

// checkClean checks that List shows exactly the objects present: nothing is left of
// unfinished or aborted objects.
func (e *partEnv) checkClean(t *testing.T) {
	t.Helper()
	e.checkList(t, e.used, e.present)
}

// checkAborted checks that nothing is left of o: its key holds what it held before, if
// anything, and List shows exactly the objects present.
func (e *partEnv) checkAborted(t *testing.T, o *partObject) {
	t.Helper()
	e.checkUnfinished(t, o)
	e.checkClean(t)
}

// abort aborts o's handle h, or every unfinished object under o's key if h is nil.
func (e *partEnv) abort(t *testing.T, o *partObject, h []byte) {
	t.Helper()
	if err := e.ps.AbortObject(e.ctx, o.key, h); err != nil {
		t.Fatalf("AbortObject(%q, handle of %d bytes): %v", o.key, len(h), err)
	}
}

// list returns the sorted names of Options.List but the directories on the way to the keys
// the case used, nil when List is not set.
func (e *partEnv) list(t *testing.T) []string {
	t.Helper()
	if e.o.List == nil {
		return nil
	}
	if e.settle != nil {
		e.settle(t)
	}
	names := slices.DeleteFunc(e.o.List(t), func(n string) bool {
		return slices.ContainsFunc(e.used, func(k string) bool { return strings.HasPrefix(k, n+"/") })
	})
	slices.Sort(names)
	return names
}
