package partfile_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/partfile"
)

// memFile is a journal in memory. It records the writes made since the last Sync, so a
// test can drop them as a crash would.
type memFile struct {
	mu      sync.Mutex
	synced  []byte
	current []byte
	syncs   int
	// failSync, if set, is returned by Sync, which then syncs nothing.
	failSync error
}

func (f *memFile) ReadAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if off >= int64(len(f.current)) {
		return 0, io.EOF
	}
	n := copy(b, f.current[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if end := off + int64(len(b)); end > int64(len(f.current)) {
		f.current = append(f.current, make([]byte, end-int64(len(f.current)))...)
	}
	return copy(f.current[off:], b), nil
}

func (f *memFile) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSync != nil {
		return f.failSync
	}
	f.synced = bytes.Clone(f.current)
	f.syncs++
	return nil
}

// crash forgets the writes since the last Sync.
func (f *memFile) crash() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.current = bytes.Clone(f.synced)
}

func partInfo(n int, b []byte) sdk.PartInfo {
	sum := sha256.Sum256(b)
	return sdk.PartInfo{Number: n, Size: int64(len(b)), SHA256: sum[:]}
}

// writePart runs the whole protocol for part n with content b and returns its receipt.
func writePart(t *testing.T, j *memFile, h partfile.Handle, n int, b []byte) []byte {
	t.Helper()
	p, err := partfile.StartPart(j, h, partInfo(n, b))
	if err != nil {
		t.Fatalf("StartPart(%d): %v", n, err)
	}
	if err := p.Copy(io.Discard, bytes.NewReader(b)); err != nil {
		t.Fatalf("Copy(%d): %v", n, err)
	}
	r, err := p.Finish()
	if err != nil {
		t.Fatalf("Finish(%d): %v", n, err)
	}
	return r
}

// object returns a handle of parts parts of 10 bytes (the last of 5) and the parts' contents.
func object(t *testing.T, parts int) (partfile.Handle, *memFile, [][]byte) {
	t.Helper()
	h := newHandle(t, "dir/obj", int64(parts*10-5), 10)
	j := &memFile{}
	if err := partfile.InitJournal(j, h); err != nil {
		t.Fatal(err)
	}
	content := make([][]byte, parts)
	for i := range content {
		content[i] = bytes.Repeat([]byte{byte('a' + i%26)}, int(h.Spec().PartSizeOf(i)))
	}
	return h, j, content
}

func TestJournalCommit(t *testing.T) {
	t.Parallel()
	h, j, content := object(t, 5)
	receipts := make([][]byte, h.Parts)
	for _, n := range []int{3, 0, 4, 1, 2} {
		receipts[n] = writePart(t, j, h, n, content[n])
	}
	if err := partfile.Verify(j, h, receipts); err != nil {
		t.Fatalf("Verify of every part's receipt: %v", err)
	}
	if len(receipts[0]) > sdk.MaxReceiptSize {
		t.Errorf("receipt of %d bytes", len(receipts[0]))
	}
	stale := func(name string, rs [][]byte) {
		t.Helper()
		if err := partfile.Verify(j, h, rs); !errors.Is(err, sdk.ErrStaleReceipt) {
			t.Errorf("%s: Verify = %v, want ErrStaleReceipt", name, err)
		}
	}
	stale("one receipt missing", receipts[:4])
	stale("one receipt too many", append(append([][]byte{}, receipts...), receipts[0]))
	swapped := append([][]byte{}, receipts...)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	stale("receipts out of order", swapped)
	flipped := append([][]byte{}, receipts...)
	flipped[2] = bytes.Clone(flipped[2])
	flipped[2][len(flipped[2])-1] ^= 1
	stale("receipt altered", flipped)
	empty := append([][]byte{}, receipts...)
	empty[4] = nil
	stale("empty receipt", empty)

	other := newHandle(t, "dir/obj", h.Size, h.PartSize)
	if err := partfile.Verify(j, other, receipts); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Verify with another handle's journal = %v, want ErrNotFound", err)
	}
	resized := h
	resized.Size, resized.Parts = h.Size+10, h.Parts+1
	if err := partfile.Verify(j, resized, append(receipts, receipts[0])); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Verify with a handle edited to another size = %v, want ErrNotFound", err)
	}
}

func TestJournalRewrite(t *testing.T) {
	t.Parallel()
	h, j, content := object(t, 3)
	receipts := make([][]byte, h.Parts)
	for n := range receipts {
		receipts[n] = writePart(t, j, h, n, content[n])
	}
	first := receipts[1]
	syncs := j.syncs
	second := writePart(t, j, h, 1, content[1])
	if j.syncs != syncs+2 {
		t.Errorf("rewriting a part synced the journal %d times, want 2 (invalidate, then record)", j.syncs-syncs)
	}
	if bytes.Equal(first, second) {
		t.Fatal("the same part written twice got the same receipt")
	}
	receipts[1] = first
	if err := partfile.Verify(j, h, receipts); !errors.Is(err, sdk.ErrStaleReceipt) {
		t.Errorf("Verify with the first write's receipt = %v, want ErrStaleReceipt", err)
	}
	receipts[1] = second
	if err := partfile.Verify(j, h, receipts); err != nil {
		t.Errorf("Verify with the second write's receipt: %v", err)
	}
}

func TestJournalFailedWrites(t *testing.T) {
	t.Parallel()
	tests := map[string]func(t *testing.T, j *memFile, h partfile.Handle, b []byte){
		"wrong bytes": func(t *testing.T, j *memFile, h partfile.Handle, b []byte) {
			p, err := partfile.StartPart(j, h, partInfo(1, b))
			if err != nil {
				t.Fatal(err)
			}
			other := bytes.Repeat([]byte{'!'}, len(b))
			if err := p.Copy(io.Discard, bytes.NewReader(other)); !errors.Is(err, sdk.ErrDigestMismatch) {
				t.Errorf("Copy of other bytes = %v, want ErrDigestMismatch", err)
			}
			if _, err := p.Finish(); err == nil {
				t.Error("Finish after a failed Copy succeeded")
			}
		},
		"short stream": func(t *testing.T, j *memFile, h partfile.Handle, b []byte) {
			p, err := partfile.StartPart(j, h, partInfo(1, b))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Copy(io.Discard, bytes.NewReader(b[:3])); !errors.Is(err, sdk.ErrSizeMismatch) {
				t.Errorf("Copy of a short stream = %v, want ErrSizeMismatch", err)
			}
		},
		"stream error": func(t *testing.T, j *memFile, h partfile.Handle, b []byte) {
			p, err := partfile.StartPart(j, h, partInfo(1, b))
			if err != nil {
				t.Fatal(err)
			}
			boom := errors.New("boom")
			r := io.MultiReader(bytes.NewReader(b[:4]), iotest.ErrReader(boom))
			if err := p.Copy(io.Discard, r); !errors.Is(err, boom) {
				t.Errorf("Copy of a failing stream = %v, want boom", err)
			}
		},
		"wrong size": func(t *testing.T, j *memFile, h partfile.Handle, b []byte) {
			if _, err := partfile.StartPart(j, h, partInfo(1, b[:5])); !errors.Is(err, sdk.ErrSizeMismatch) {
				t.Errorf("StartPart with a wrong size = %v, want ErrSizeMismatch", err)
			}
		},
		"crash while writing": func(t *testing.T, j *memFile, h partfile.Handle, b []byte) {
			if _, err := partfile.StartPart(j, h, partInfo(1, b)); err != nil {
				t.Fatal(err)
			}
			j.crash() // the data may be half written; the journal says what was synced
		},
		"record not synced": func(t *testing.T, j *memFile, h partfile.Handle, b []byte) {
			p, err := partfile.StartPart(j, h, partInfo(1, b))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Copy(io.Discard, bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
			j.failSync = errors.New("disk gone")
			if r, err := p.Finish(); !errors.Is(err, j.failSync) {
				t.Errorf("Finish with a failing sync = %x, %v; want the sync's error", r, err)
			}
			j.failSync = nil
			j.crash()
		},
	}
	for name, fail := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h, j, content := object(t, 3)
			receipts := make([][]byte, h.Parts)
			for n := range receipts {
				receipts[n] = writePart(t, j, h, n, content[n])
			}
			fail(t, j, h, content[1])
			if err := partfile.Verify(j, h, receipts); !errors.Is(err, sdk.ErrStaleReceipt) {
				t.Errorf("Verify after a failed write of part 1 = %v, want ErrStaleReceipt", err)
			}
			receipts[1] = writePart(t, j, h, 1, content[1])
			if err := partfile.Verify(j, h, receipts); err != nil {
				t.Errorf("Verify after writing part 1 again: %v", err)
			}
		})
	}
}

// A torn record (a crash in the middle of writing it) reads as no record.
func TestJournalTornRecord(t *testing.T) {
	t.Parallel()
	h, j, content := object(t, 2)
	r0 := writePart(t, j, h, 0, content[0])
	r1 := writePart(t, j, h, 1, content[1])
	j.mu.Lock()
	j.current[2*64+40] ^= 0xff // inside part 1's record
	j.mu.Unlock()
	if err := partfile.Verify(j, h, [][]byte{r0, r1}); !errors.Is(err, sdk.ErrStaleReceipt) {
		t.Errorf("Verify with a damaged record = %v, want ErrStaleReceipt", err)
	}
}

func TestJournalStartRefuses(t *testing.T) {
	t.Parallel()
	h, j, content := object(t, 2)
	if _, err := partfile.StartPart(j, h, partInfo(2, content[1])); !errors.Is(err, sdk.ErrSizeMismatch) {
		t.Errorf("StartPart beyond the last part = %v, want ErrSizeMismatch", err)
	}
	if _, err := partfile.StartPart(j, h, partInfo(-1, content[1])); !errors.Is(err, sdk.ErrSizeMismatch) {
		t.Errorf("StartPart of part -1 = %v, want ErrSizeMismatch", err)
	}
	if _, err := partfile.StartPart(&memFile{}, h, partInfo(0, content[0])); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("StartPart on an empty journal = %v, want ErrNotFound", err)
	}
	p := partInfo(0, content[0])
	p.SHA256 = p.SHA256[:16]
	if _, err := partfile.StartPart(j, h, p); !errors.Is(err, sdk.ErrDigestMismatch) {
		t.Errorf("StartPart with a short digest = %v, want ErrDigestMismatch", err)
	}
}

// An object of more parts than one batch of Verify, and of no parts at all.
func TestJournalSizes(t *testing.T) {
	t.Parallel()
	h, j, content := object(t, 1100)
	receipts := make([][]byte, h.Parts)
	for n := range receipts {
		receipts[n] = writePart(t, j, h, n, content[n])
	}
	if err := partfile.Verify(j, h, receipts); err != nil {
		t.Fatalf("Verify of 1100 parts: %v", err)
	}
	receipts[1050] = receipts[1049]
	if err := partfile.Verify(j, h, receipts); !errors.Is(err, sdk.ErrStaleReceipt) {
		t.Errorf("Verify with a wrong receipt in the second batch = %v, want ErrStaleReceipt", err)
	}

	empty, err := partfile.New("empty", sdk.ObjectSpec{Size: 0, PartSize: 1 << 20, PartCount: 0})
	if err != nil {
		t.Fatal(err)
	}
	ej := &memFile{}
	if err := partfile.InitJournal(ej, empty); err != nil {
		t.Fatal(err)
	}
	if err := partfile.Verify(ej, empty, nil); err != nil {
		t.Errorf("Verify of an empty object: %v", err)
	}
}
