package partfile

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// File is an open journal. Sync must make what was written durable (fdatasync, an SMB
// flush). *os.File qualifies, with fsync as its Sync.
type File interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

const (
	recordSize     = 64
	recordVersion  = 1
	receiptVersion = 1
	receiptSize    = 1 + 4 + 8 + 8 + sha256.Size

	kindHeader  = 'H'
	stateValid  = 'V' // the part's bytes are written and durable
	stateWiping = 'X' // the part's bytes are being replaced

	// verifyBatch is how many records Verify reads at once (64 KiB).
	verifyBatch = 1024
)

var magic = [4]byte{'C', 'U', 'P', 'J'}

// slotOffset returns the journal offset of part n's record.
func slotOffset(n int) int64 { return int64(n+1) * recordSize }

// seal writes the magic, the version and the checksum into a record whose other fields
// are filled in.
func seal(r []byte) []byte {
	copy(r[0:4], magic[:])
	r[4] = recordVersion
	binary.BigEndian.PutUint32(r[60:64], crc32.Checksum(r[:60], castagnoli))
	return r
}

// sound reports whether r is a record at all: magic, version and checksum.
func sound(r []byte) bool {
	return len(r) == recordSize && bytes.Equal(r[0:4], magic[:]) && r[4] == recordVersion &&
		crc32.Checksum(r[:60], castagnoli) == binary.BigEndian.Uint32(r[60:64])
}

func (h Handle) header() []byte {
	r := make([]byte, recordSize)
	r[5] = kindHeader
	copy(r[8:16], h.ID[:])
	binary.BigEndian.PutUint64(r[16:24], uint64(h.Size))
	binary.BigEndian.PutUint64(r[24:32], uint64(h.PartSize))
	binary.BigEndian.PutUint32(r[32:36], uint32(h.Parts))
	sum := sha256.Sum256([]byte(h.Key))
	copy(r[36:60], sum[:24])
	return seal(r)
}

// partRecord is the decoded record of one part.
type partRecord struct {
	state   byte
	part    int
	size    int64
	writeID [8]byte
	sha256  [32]byte
}

func (p partRecord) encode() []byte {
	r := make([]byte, recordSize)
	r[5] = p.state
	binary.BigEndian.PutUint32(r[8:12], uint32(p.part))
	binary.BigEndian.PutUint64(r[12:20], uint64(p.size))
	copy(r[20:28], p.writeID[:])
	copy(r[28:60], p.sha256[:])
	return seal(r)
}

// decodePart returns the record in r, or ok false when r holds none (never written, torn,
// or not a part record).
func decodePart(r []byte) (p partRecord, ok bool) {
	if !sound(r) || (r[5] != stateValid && r[5] != stateWiping) {
		return p, false
	}
	p.state = r[5]
	p.part = int(binary.BigEndian.Uint32(r[8:12]))
	p.size = int64(binary.BigEndian.Uint64(r[12:20]))
	copy(p.writeID[:], r[20:28])
	copy(p.sha256[:], r[28:60])
	return p, true
}

// receipt encodes the receipt of a valid record.
func (p partRecord) receipt() []byte {
	b := make([]byte, 0, receiptSize)
	b = append(b, receiptVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(p.part))
	b = binary.BigEndian.AppendUint64(b, uint64(p.size))
	b = append(b, p.writeID[:]...)
	return append(b, p.sha256[:]...)
}

// readFull reads len(b) bytes at off; bytes past the end of the file read as zeros.
func readFull(f io.ReaderAt, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("partfile: read journal at %d: %w", off, err)
	}
	clear(b[n:])
	return nil
}

// InitJournal writes h's header into j, a new empty journal, and syncs it.
func InitJournal(j File, h Handle) error {
	if _, err := j.WriteAt(h.header(), 0); err != nil {
		return fmt.Errorf("partfile: write journal header: %w", err)
	}
	if err := j.Sync(); err != nil {
		return fmt.Errorf("partfile: sync journal: %w", err)
	}
	return nil
}

// CheckJournal reads j's header and fails with an error wrapping sdk.ErrNotFound unless it
// is h's.
func CheckJournal(j io.ReaderAt, h Handle) error {
	r := make([]byte, recordSize)
	if err := readFull(j, r, 0); err != nil {
		return err
	}
	if !bytes.Equal(r, h.header()) {
		return fmt.Errorf("%w: the journal of %s does not match the handle", sdk.ErrNotFound, h.DataName())
	}
	return nil
}

// Part is a part being written: StartPart, then Copy, then (once the bytes are durable)
// Finish. A Part is used by one goroutine.
type Part struct {
	j      File
	h      Handle
	info   sdk.PartInfo
	copied bool // Copy succeeded
}

// StartPart begins writing part p of h's object, whose journal is j: it checks the journal's
// header (sdk.ErrNotFound when it is another object's), and when the part has a valid
// record it marks the part as being replaced and syncs the journal, so that no earlier
// receipt of it is valid any more. Only then may the part's bytes change through the
// plugin (with sdk.PartFiles the host writes a part into the data file before RecordPart
// calls this, but only a part of which it holds no receipt: a receipt it never recorded
// may still be valid here, and is made stale now). It then checks p:
// a part number out of range or a size other than the part's gives sdk.ErrSizeMismatch, a
// digest that is no SHA-256 sdk.ErrDigestMismatch; the part is absent afterwards either way.
// The caller must hold the part's lock (Locks.Part).
func StartPart(j File, h Handle, p sdk.PartInfo) (*Part, error) {
	if p.Number < 0 || p.Number >= h.Parts {
		return nil, fmt.Errorf("%w: part %d of an object of %d parts", sdk.ErrSizeMismatch, p.Number, h.Parts)
	}
	if err := CheckJournal(j, h); err != nil {
		return nil, err
	}
	r := make([]byte, recordSize)
	if err := readFull(j, r, slotOffset(p.Number)); err != nil {
		return nil, err
	}
	if old, ok := decodePart(r); ok && old.state == stateValid {
		wipe := partRecord{state: stateWiping, part: p.Number, size: old.size}
		if _, err := j.WriteAt(wipe.encode(), slotOffset(p.Number)); err != nil {
			return nil, fmt.Errorf("partfile: write journal: %w", err)
		}
		if err := j.Sync(); err != nil {
			return nil, fmt.Errorf("partfile: sync journal: %w", err)
		}
	}
	if want := h.Spec().PartSizeOf(p.Number); p.Size != want {
		return nil, fmt.Errorf("%w: part %d of %d bytes sent with a size of %d", sdk.ErrSizeMismatch, p.Number, want, p.Size)
	}
	if len(p.SHA256) != sha256.Size {
		return nil, fmt.Errorf("%w: part %d: a sha256 of %d bytes", sdk.ErrDigestMismatch, p.Number, len(p.SHA256))
	}
	return &Part{j: j, h: h, info: p}, nil
}

// Offset returns where the part's bytes go in the object's data file.
func (p *Part) Offset() int64 { return p.h.PartOffset(p.info.Number) }

// Copy copies the part from r to w, which writes the data file from Offset on, with
// sdk.CopyExact: r must yield exactly the part's size and then io.EOF (else the error wraps
// sdk.ErrSizeMismatch or r's error), and the bytes must hash to the part's SHA-256 (else
// sdk.ErrDigestMismatch). Pass the reader sdk.Serve handed to PutPart unwrapped: its bytes
// are verified on arrival and not hashed again.
func (p *Part) Copy(w io.Writer, r io.Reader) error {
	sum, err := sdk.CopyExact(w, r, p.info.Size)
	if err != nil {
		return fmt.Errorf("part %d: %w", p.info.Number, err)
	}
	if !bytes.Equal(sum, p.info.SHA256) {
		return fmt.Errorf("%w: part %d: the bytes have sha256 %x, the part's is %x", sdk.ErrDigestMismatch, p.info.Number, sum, p.info.SHA256)
	}
	p.copied = true
	return nil
}

// Adopt records that the part's bytes were written at Offset by another process (the host,
// through sdk.PartFiles) and are durable, in place of Copy: Finish may follow. The plugin
// does not read them back; the writer checked them against the part's SHA-256.
func (p *Part) Adopt() { p.copied = true }

// Finish records the part as complete, with a new write id, syncs the journal and returns
// the part's receipt. Call it only after Copy succeeded and the bytes it wrote are durable.
func (p *Part) Finish() ([]byte, error) {
	if !p.copied {
		return nil, fmt.Errorf("partfile: part %d finished before its bytes were copied", p.info.Number)
	}
	rec := partRecord{state: stateValid, part: p.info.Number, size: p.info.Size}
	copy(rec.sha256[:], p.info.SHA256)
	if _, err := rand.Read(rec.writeID[:]); err != nil {
		return nil, fmt.Errorf("partfile: random write id: %w", err)
	}
	if _, err := p.j.WriteAt(rec.encode(), slotOffset(p.info.Number)); err != nil {
		return nil, fmt.Errorf("partfile: write journal: %w", err)
	}
	if err := p.j.Sync(); err != nil {
		return nil, fmt.Errorf("partfile: sync journal: %w", err)
	}
	return rec.receipt(), nil
}

// Verify checks the receipts of a commit against h's journal j: one receipt per part, in
// part order, each the receipt of the part's current valid record. A missing, extra,
// unreadable or outdated receipt, or a part without a valid record, gives an error wrapping
// sdk.ErrStaleReceipt that names the first such part; a journal of another object gives
// sdk.ErrNotFound. It reads the journal in batches, so its memory does not grow with the
// number of parts.
func Verify(j io.ReaderAt, h Handle, receipts [][]byte) error {
	if err := CheckJournal(j, h); err != nil {
		return err
	}
	if len(receipts) != h.Parts {
		return fmt.Errorf("%w: %d receipts for an object of %d parts", sdk.ErrStaleReceipt, len(receipts), h.Parts)
	}
	buf := make([]byte, min(h.Parts, verifyBatch)*recordSize)
	for first := 0; first < h.Parts; first += verifyBatch {
		n := min(verifyBatch, h.Parts-first)
		b := buf[:n*recordSize]
		if err := readFull(j, b, slotOffset(first)); err != nil {
			return err
		}
		for i := range n {
			part := first + i
			rec, ok := decodePart(b[i*recordSize : (i+1)*recordSize])
			switch {
			case !ok || rec.state != stateValid || rec.part != part || rec.size != h.Spec().PartSizeOf(part):
				return fmt.Errorf("%w: part %d is not stored (never written, or its last write failed)", sdk.ErrStaleReceipt, part)
			case !bytes.Equal(receipts[part], rec.receipt()):
				return fmt.Errorf("%w: the receipt of part %d is not that of its last write", sdk.ErrStaleReceipt, part)
			}
		}
	}
	return nil
}
