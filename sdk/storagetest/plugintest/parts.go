// Package plugintest holds helpers for a plugin's own tests, beyond the conformance suite
// of package storagetest: for part-wise storage an object cut into parts, the calls that
// store it, and handles in package partfile's format forged as a hostile host would; for
// settings, a table of health checks with settings gone wrong; test content.
package plugintest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/partfile"
)

// Object is the content of a part-wise object and how it is cut.
type Object struct {
	Key  string
	Data []byte
	Spec sdk.ObjectSpec
}

// NewObject returns an object of size bytes under key in parts of partSize. Its content
// is pseudo-random, seeded by key and size: objects of different keys differ.
func NewObject(key string, size, partSize int64) Object {
	seed := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(key), uint64(size)))
	b := make([]byte, size)
	rand.NewChaCha8(seed).Read(b)
	return Object{Key: key, Data: b, Spec: sdk.ObjectSpec{
		Size: size, PartSize: partSize, PartCount: int((size + partSize - 1) / partSize),
	}}
}

// Parts returns the number of parts.
func (o Object) Parts() int { return o.Spec.PartCount }

// Part returns the bytes of part n.
func (o Object) Part(n int) []byte {
	off := int64(n) * o.Spec.PartSize
	return o.Data[off : off+o.Spec.PartSizeOf(n)]
}

// Info returns the PartInfo of part n.
func (o Object) Info(n int) sdk.PartInfo {
	sum := sha256.Sum256(o.Part(n))
	return sdk.PartInfo{Number: n, Size: int64(len(o.Part(n))), SHA256: sum[:]}
}

// SHA256 returns the digest of the whole object.
func (o Object) SHA256() []byte {
	s := sha256.Sum256(o.Data)
	return s[:]
}

// Begin starts o in ps and returns its handle; it fails the test on an error.
func Begin(t testing.TB, ps sdk.PartStorage, o Object) []byte {
	t.Helper()
	h, err := ps.BeginObject(t.Context(), o.Key, o.Spec)
	if err != nil {
		t.Fatalf("BeginObject(%q, %+v): %v", o.Key, o.Spec, err)
	}
	return h
}

// Put stores part n of o and returns its receipt; it fails the test on an error.
func Put(t testing.TB, ps sdk.PartStorage, h []byte, o Object, n int) []byte {
	t.Helper()
	r, err := ps.PutPart(t.Context(), h, o.Info(n), bytes.NewReader(o.Part(n)))
	if err != nil {
		t.Fatalf("PutPart %d of %q: %v", n, o.Key, err)
	}
	return r
}

// PutAll stores every part of o, in a random order, at most concurrency at a time (0: all
// at once), and returns the receipts in part order; it fails the test on an error.
func PutAll(t testing.TB, ps sdk.PartStorage, h []byte, o Object, concurrency int) [][]byte {
	t.Helper()
	if concurrency <= 0 {
		concurrency = max(o.Parts(), 1)
	}
	receipts := make([][]byte, o.Parts())
	errs := make([]error, o.Parts())
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for _, n := range rand.Perm(o.Parts()) {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			receipts[n], errs[n] = ps.PutPart(t.Context(), h, o.Info(n), bytes.NewReader(o.Part(n)))
		})
	}
	wg.Wait()
	for n, err := range errs {
		if err != nil {
			t.Fatalf("PutPart %d of %q: %v", n, o.Key, err)
		}
	}
	return receipts
}

// ForgeHandle returns a handle in package partfile's format, with the id
// 0102030405060708 and a valid checksum, for any key and sizes, checked or not: what a
// hostile or broken host could send to a backend built on partfile.
func ForgeHandle(key string, size, partSize int64, parts int) []byte {
	return partfile.Handle{Key: key, ID: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, Size: size, PartSize: partSize, Parts: parts}.Marshal()
}

// Resize returns handle h (in partfile's format) with other sizes and a valid checksum:
// the same object id and key, which its journal does not match.
func Resize(t testing.TB, h []byte, size, partSize int64, parts int) []byte {
	t.Helper()
	d, err := partfile.Parse(h)
	if err != nil {
		t.Fatalf("parsing a handle to resize: %v", err)
	}
	d.Size, d.PartSize, d.Parts = size, partSize, parts
	return d.Marshal()
}

// PutParts stores parts 0 to count-1 of the object of h, inFlight at a time, taking each
// part's PartInfo and content from part, and returns the receipts; it fails the test on an
// error. It is for benchmarks, whose content is made on the fly rather than held.
func PutParts(tb testing.TB, ps sdk.PartStorage, h []byte, count, inFlight int, part func(n int) (sdk.PartInfo, io.Reader)) [][]byte {
	tb.Helper()
	receipts := make([][]byte, count)
	errs := make([]error, count)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for n := int(next.Add(1) - 1); n < count; n = int(next.Add(1) - 1) {
				p, r := part(n)
				if receipts[n], errs[n] = ps.PutPart(tb.Context(), h, p, r); errs[n] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for n, err := range errs {
		if err != nil {
			tb.Fatalf("PutPart %d: %v", n, err)
		}
	}
	return receipts
}
