package smbstore

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

var errBoom = errors.New("boom")

// A failed write of a part that was stored before leaves it absent: a commit with its
// earlier receipt fails and makes nothing visible, and the part can be sent again.
func TestPartsFailedRewrite(t *testing.T) {
	tests := map[string]struct {
		reader func(o partObject, cancel context.CancelFunc) io.Reader
		size   int64 // declared size; 0: the part's
		want   error
	}{
		"wrong bytes": {
			reader: func(o partObject, _ context.CancelFunc) io.Reader {
				b := bytes.Clone(o.Part(1))
				b[len(b)-1] ^= 1
				return bytes.NewReader(b)
			},
			want: sdk.ErrDigestMismatch,
		},
		"wrong size": {
			reader: func(o partObject, _ context.CancelFunc) io.Reader { return bytes.NewReader(o.Part(1)[1:]) },
			size:   1<<20 - 1,
			want:   sdk.ErrSizeMismatch,
		},
		"cut stream": {
			reader: func(o partObject, _ context.CancelFunc) io.Reader { return bytes.NewReader(o.Part(1)[:700_000]) },
			want:   sdk.ErrSizeMismatch,
		},
		"stream error": {
			reader: func(o partObject, _ context.CancelFunc) io.Reader {
				return io.MultiReader(bytes.NewReader(o.Part(1)[:5000]), iotest.ErrReader(errBoom))
			},
			want: errBoom,
		},
		"cancelled": {
			reader: func(o partObject, cancel context.CancelFunc) io.Reader {
				return plugintest.CancelAfter(bytes.NewReader(o.Part(1)), 300_000, cancel)
			},
			want: context.Canceled,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newPartEnv(t)
			o := plugintest.NewObject("dir/obj.bin", 3<<20, 1<<20)
			h := e.begin(t, e.st, o)
			receipts := putAll(t, e.st, h, o)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			info := o.Info(1)
			if tc.size != 0 {
				info.Size = tc.size
			}
			if r, err := e.st.PutPart(ctx, h, info, tc.reader(o, cancel)); !errors.Is(err, tc.want) {
				t.Fatalf("PutPart = %x, %v; want an error wrapping %v", r, err, tc.want)
			}
			if _, err := e.st.CommitObject(t.Context(), h, receipts, o.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
				t.Fatalf("CommitObject with the earlier receipt = %v, want ErrStaleReceipt", err)
			}
			e.invisible(t, o.Key)
			receipts[1] = putOne(t, e.st, h, o, 1)
			obj, err := e.st.CommitObject(t.Context(), h, receipts, o.SHA256())
			if err != nil {
				t.Fatalf("CommitObject after sending part 1 again: %v", err)
			}
			e.committed(t, obj, o)
		})
	}
}

func TestPartsStaleAndMissing(t *testing.T) {
	e := newPartEnv(t)
	o := plugintest.NewObject("dir/obj.bin", 4<<20, 1<<20)
	h := e.begin(t, e.st, o)
	receipts := putAll(t, e.st, h, o)
	if resent := putOne(t, e.st, h, o, 3); bytes.Equal(resent, receipts[3]) {
		t.Fatal("a re-sent part got its earlier receipt")
	}
	missing := slices.Clone(receipts)
	missing[2] = nil
	for name, rs := range map[string][][]byte{"stale receipt": receipts, "missing receipt": missing, "too few": receipts[:3]} {
		if _, err := e.st.CommitObject(t.Context(), h, rs, o.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
			t.Errorf("%s: CommitObject = %v, want ErrStaleReceipt", name, err)
		}
		e.invisible(t, o.Key)
	}
	o2 := plugintest.NewObject("dir/two.bin", 3<<20, 1<<20)
	h2 := e.begin(t, e.st, o2)
	r2 := [][]byte{putOne(t, e.st, h2, o2, 0), putOne(t, e.st, h2, o2, 2), putOne(t, e.st, h2, o2, 2)}
	if _, err := e.st.CommitObject(t.Context(), h2, r2, o2.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
		t.Errorf("CommitObject with part 1 never sent = %v, want ErrStaleReceipt", err)
	}
	e.invisible(t, o2.Key)
	if err := e.st.AbortObject(t.Context(), o.Key, h); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AbortObject(t.Context(), o2.Key, h2); err != nil {
		t.Fatal(err)
	}
	if got := e.files(t); len(got) != 0 {
		t.Errorf("files after abort: %v, want none", got)
	}
	if _, err := e.st.PutPart(t.Context(), h, o.Info(0), bytes.NewReader(o.Part(0))); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("PutPart after abort = %v, want ErrNotFound", err)
	}
	if _, err := e.st.CommitObject(t.Context(), h, receipts, o.SHA256()); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("CommitObject after abort = %v, want ErrNotFound", err)
	}
	if err := e.st.AbortObject(t.Context(), o.Key, h); err != nil {
		t.Errorf("second AbortObject: %v", err)
	}
}

// Two writes of the same part at once, with different bytes: one of them is stored, whole,
// and only its receipt commits.
func TestPartsSamePartConcurrently(t *testing.T) {
	e := newPartEnv(t)
	a := plugintest.NewObject("dir/obj.bin", 4<<20, 2<<20)
	b := partObject{Key: a.Key, Data: bytes.Clone(a.Data), Spec: a.Spec}
	_, _ = crand.Read(b.Data[:b.Spec.PartSize])
	h := e.begin(t, e.st, a)
	last := putOne(t, e.st, h, a, 1)
	var ra, rb []byte
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { ra = putOne(t, e.st, h, a, 0) })
		wg.Go(func() { rb = putOne(t, e.st, h, b, 0) })
		wg.Wait()
	}
	obj, err := e.st.CommitObject(t.Context(), h, [][]byte{ra, last}, a.SHA256())
	want := a
	if errors.Is(err, sdk.ErrStaleReceipt) {
		e.invisible(t, a.Key)
		obj, err = e.st.CommitObject(t.Context(), h, [][]byte{rb, last}, b.SHA256())
		want = b
	}
	if err != nil {
		t.Fatalf("CommitObject with the receipt of the last writer: %v", err)
	}
	e.committed(t, obj, want)
}
