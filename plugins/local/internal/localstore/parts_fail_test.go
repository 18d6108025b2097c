package localstore_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// failure is a PutPart of part 1 that must fail and leave the part absent.
type failure struct {
	reader func(o object, ctx context.Context, cancel context.CancelFunc) io.Reader
	info   func(o object) sdk.PartInfo // nil: the part's own
	want   error
}

var errBoom = errors.New("boom")

var failures = map[string]failure{
	"wrong bytes": {
		reader: func(o object, _ context.Context, _ context.CancelFunc) io.Reader {
			b := bytes.Clone(o.Part(1))
			b[len(b)/2] ^= 1
			return bytes.NewReader(b)
		},
		want: sdk.ErrDigestMismatch,
	},
	"wrong size": {
		reader: func(o object, _ context.Context, _ context.CancelFunc) io.Reader {
			return bytes.NewReader(o.Part(1)[1:])
		},
		info: func(o object) sdk.PartInfo {
			i := o.Info(1)
			i.Size--
			return i
		},
		want: sdk.ErrSizeMismatch,
	},
	"too long": {
		reader: func(o object, _ context.Context, _ context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(o.Part(1)), strings.NewReader("x"))
		},
		want: sdk.ErrSizeMismatch,
	},
	"cut stream": {
		reader: func(o object, _ context.Context, _ context.CancelFunc) io.Reader {
			return bytes.NewReader(o.Part(1)[:len(o.Part(1))/2])
		},
		want: sdk.ErrSizeMismatch,
	},
	"stream error": {
		reader: func(o object, _ context.Context, _ context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(o.Part(1)[:5000]), iotest.ErrReader(errBoom))
		},
		want: errBoom,
	},
	"cancelled": {
		reader: func(o object, _ context.Context, cancel context.CancelFunc) io.Reader {
			return plugintest.CancelAfter(bytes.NewReader(o.Part(1)), 300_000, cancel)
		},
		want: context.Canceled,
	},
}

// A failed write of a part that was stored before leaves it absent: a commit with its
// earlier receipt fails and makes nothing visible, the object can still be aborted, and
// the part can be sent again.
func TestPartsFailedRewrite(t *testing.T) {
	t.Parallel()
	for name, f := range failures {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newPartStore(t)
			o := plugintest.NewObject("dir/obj.bin", 3<<20, 1<<20)
			h := s.begin(t, o)
			receipts := s.putAll(t, h, o)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			info := o.Info(1)
			if f.info != nil {
				info = f.info(o)
			}
			if r, err := s.PutPart(ctx, h, info, f.reader(o, ctx, cancel)); !errors.Is(err, f.want) {
				t.Fatalf("PutPart = %x, %v; want an error wrapping %v", r, err, f.want)
			}
			if _, err := s.CommitObject(t.Context(), h, receipts, o.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
				t.Fatalf("CommitObject with the earlier receipt = %v, want ErrStaleReceipt", err)
			}
			s.invisible(t, o.Key)

			receipts[1] = s.put(t, h, o, 1)
			obj, err := s.CommitObject(t.Context(), h, receipts, o.SHA256())
			if err != nil {
				t.Fatalf("CommitObject after sending part 1 again: %v", err)
			}
			s.committed(t, obj, o)
		})
	}
}

func TestPartsStaleAndMissing(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	o := plugintest.NewObject("dir/obj.bin", 5<<20, 1<<20)
	h := s.begin(t, o)
	receipts := s.putAll(t, h, o)
	resent := s.put(t, h, o, 3) // the same bytes again: a new receipt, the old one is stale
	if bytes.Equal(resent, receipts[3]) {
		t.Fatal("a re-sent part got its earlier receipt")
	}
	missing := slices.Clone(receipts)
	missing[2] = nil
	tests := map[string][][]byte{
		"stale receipt":   receipts,
		"missing receipt": missing,
		"too few":         receipts[:4],
		"none":            nil,
	}
	for name, rs := range tests {
		if _, err := s.CommitObject(t.Context(), h, rs, o.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
			t.Errorf("%s: CommitObject = %v, want ErrStaleReceipt", name, err)
		}
		s.invisible(t, o.Key)
	}
	// An object with a part never sent cannot be committed either.
	o2 := plugintest.NewObject("dir/two.bin", 3<<20, 1<<20)
	h2 := s.begin(t, o2)
	r2 := [][]byte{s.put(t, h2, o2, 0), s.put(t, h2, o2, 2), s.put(t, h2, o2, 2)}
	if _, err := s.CommitObject(t.Context(), h2, r2, o2.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
		t.Errorf("CommitObject with part 1 never sent = %v, want ErrStaleReceipt", err)
	}
	s.invisible(t, o2.Key)

	// Both can still be aborted, which leaves nothing.
	for _, a := range []struct {
		Key string
		h   []byte
	}{{o.Key, h}, {o2.Key, h2}} {
		if err := s.AbortObject(t.Context(), a.Key, a.h); err != nil {
			t.Fatalf("AbortObject: %v", err)
		}
	}
	if got := s.files(t); len(got) != 0 {
		t.Errorf("files after abort: %v, want none", got)
	}
	for _, hh := range [][]byte{h, h2} {
		if _, err := s.PutPart(t.Context(), hh, o.Info(0), bytes.NewReader(o.Part(0))); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("PutPart after abort = %v, want ErrNotFound", err)
		}
		if _, err := s.CommitObject(t.Context(), hh, receipts, o.SHA256()); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("CommitObject after abort = %v, want ErrNotFound", err)
		}
		if err := s.AbortObject(t.Context(), o.Key, h); err != nil {
			t.Errorf("second AbortObject: %v", err)
		}
	}
}

// Two writes of the same part at once, with different bytes: one of them is stored, whole,
// and only its receipt commits.
func TestPartsSamePartConcurrently(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	a := plugintest.NewObject("dir/obj.bin", 4<<20, 2<<20)
	b := object{Key: a.Key, Data: bytes.Clone(a.Data), Spec: a.Spec}
	_, _ = crand.Read(b.Data[:b.Spec.PartSize]) // part 0 differs
	h := s.begin(t, a)
	last := s.put(t, h, a, 1)
	var ra, rb []byte
	var wg sync.WaitGroup
	for range 3 { // a few rounds, to let the two interleave in different ways
		wg.Go(func() { ra = s.put(t, h, a, 0) })
		wg.Go(func() { rb = s.put(t, h, b, 0) })
		wg.Wait()
	}
	_, errA := s.CommitObject(t.Context(), h, [][]byte{ra, last}, a.SHA256())
	if errA == nil {
		s.committed(t, sdk.Object{Key: a.Key, Size: int64(len(a.Data)), SHA256: a.SHA256(), Location: filepath.Join(s.root, a.Key)}, a)
		return
	}
	if !errors.Is(errA, sdk.ErrStaleReceipt) {
		t.Fatalf("CommitObject with one writer's receipt = %v, want success or ErrStaleReceipt", errA)
	}
	s.invisible(t, a.Key)
	obj, err := s.CommitObject(t.Context(), h, [][]byte{rb, last}, b.SHA256())
	if err != nil {
		t.Fatalf("CommitObject with the other writer's receipt (the first was stale): %v", err)
	}
	s.committed(t, obj, b)
}
