package sdk

import (
	"context"
	"fmt"
	"io"
)

// PartStorage is implemented by backends that can store an object part by part, as S3
// multipart uploads do: the host sends each part as soon as a client uploaded it, and
// completing the upload only commits what the backend already holds, in a time that does
// not grow with the object. It is optional: a Storage without it gets every object whole
// through Put, and works exactly as before.
//
// A part-wise object goes through BeginObject, PutPart for every part (in any order,
// concurrently, more than once), then CommitObject or AbortObject. Handles and receipts are
// opaque to the host, which persists them: they must stay valid when the plugin process
// restarts (encode in them what is needed to find the partial object again, never an
// in-memory pointer), and they are checked when they come back (a handle must not let the
// host reach outside the backend's root). Implementations must be safe for concurrent use.
type PartStorage interface {
	// PartLimits tells the host which objects it may send part-wise: parts but the last of
	// at least MinPartSize bytes, at most MaxParts parts (0: no limit).
	PartLimits() PartLimits

	// BeginObject starts an unfinished object under key and returns its handle. Every
	// earlier unfinished part-wise object under key is aborted first (the leftovers of a
	// crash before the host recorded its handle). It may decline an object with an error
	// wrapping ErrNotSupported; the host then stores it with Put.
	BeginObject(ctx context.Context, key string, spec ObjectSpec) (handle []byte, err error)

	// PutPart stores part p of the object of handle from r and returns a receipt once the
	// part is durable in the backend. r yields exactly p.Size bytes whose SHA-256 is p.SHA256
	// and then io.EOF; when it returns any other error (the sdk's reader does so when the
	// bytes do not match), or ctx is cancelled, PutPart fails and part p is absent
	// afterwards: an earlier receipt for it must then be refused by CommitObject. A part
	// stored again replaces the earlier one, whose receipt becomes stale. An unknown handle
	// gives an error wrapping ErrNotFound.
	PutPart(ctx context.Context, handle []byte, p PartInfo, r io.Reader) (receipt []byte, err error)

	// CommitObject makes the object visible under its key, atomically and without reading
	// it back, from the parts named by receipts (receipts[i] is part i's). It fails and
	// leaves nothing visible when a receipt is missing or stale (ErrStaleReceipt) or the
	// handle is unknown (ErrNotFound). sha256 is the whole object's digest as the host
	// computed it over the same bytes; record it where the backend can. Committing a handle
	// that was already committed returns the object again.
	CommitObject(ctx context.Context, handle []byte, receipts [][]byte, sha256 []byte) (Object, error)

	// AbortObject removes the unfinished object of handle and all of its parts; with a nil
	// handle, every unfinished part-wise object under key. Aborting what is not there is
	// not an error.
	AbortObject(ctx context.Context, key string, handle []byte) error
}

// PartLimits are the objects a PartStorage takes part-wise.
type PartLimits struct {
	MinPartSize int64 // smallest part but the last, bytes; 0: no minimum
	MaxParts    int64 // most parts of one object; 0: no limit
}

// Allows reports whether an object of spec fits the limits.
func (l PartLimits) Allows(spec ObjectSpec) bool {
	if l.MaxParts > 0 && int64(spec.PartCount) > l.MaxParts {
		return false
	}
	return spec.PartCount <= 1 || spec.PartSize >= l.MinPartSize
}

// ObjectSpec describes a part-wise object: Size bytes in PartCount parts of PartSize bytes,
// the last one the remainder.
type ObjectSpec struct {
	Size      int64
	PartSize  int64
	PartCount int
	// SHA256 is the whole object's digest when it is known in advance, else nil.
	SHA256 []byte
}

// PartSizeOf returns the size of part n.
func (s ObjectSpec) PartSizeOf(n int) int64 {
	return min(s.PartSize, s.Size-int64(n)*s.PartSize)
}

// Check reports an error wrapping ErrSizeMismatch when the spec is inconsistent.
func (s ObjectSpec) Check() error {
	switch {
	case s.Size < 0, s.PartSize <= 0, s.PartCount < 0:
		return fmt.Errorf("%w: object of %d bytes in parts of %d", ErrSizeMismatch, s.Size, s.PartSize)
	case int64(s.PartCount) != (s.Size+s.PartSize-1)/s.PartSize:
		return fmt.Errorf("%w: %d bytes in parts of %d make %d parts, not %d", ErrSizeMismatch,
			s.Size, s.PartSize, (s.Size+s.PartSize-1)/s.PartSize, s.PartCount)
	case s.SHA256 != nil && len(s.SHA256) != 32:
		return fmt.Errorf("%w: object sha256 of %d bytes", ErrDigestMismatch, len(s.SHA256))
	}
	return nil
}

// PartInfo describes one part being stored.
type PartInfo struct {
	Number int    // from 0
	Size   int64  // bytes
	SHA256 []byte // the part's digest, as the host acknowledged it
}

// Limits on what crosses the wire for part-wise storage.
const (
	MaxHandleSize  = 4 << 10
	MaxReceiptSize = 1 << 10
)

// PartFiles is implemented by a PartStorage whose unfinished object is one file on a file
// system the host can open too (a local disk): the host then stores a part by writing it
// into that file itself, at the part's offset, and only asks the backend to record it. That
// saves writing every byte a second time (from the host's staging into the object) and the
// copy through the plugin. The host uses it only for a part of which it holds no receipt
// and sends no PutPart at the same time, so RecordPart never makes a receipt stale that the
// backend did not see replaced. The host checks the file it opened against the device and
// inode numbers of the path (sdk.Serve reads them), and uses PutPart for a part whenever
// that does not hold. Implementations must be safe for concurrent use.
type PartFiles interface {
	PartStorage

	// PartFile returns the absolute path of the data file of the unfinished object of
	// handle, in which part n is written at n × PartSize. The file must have the object's
	// size (ObjectSpec.Size) from BeginObject on (sparse, as truncate makes it), and be a
	// regular file with that one name: the host refuses any other file and stages the
	// part instead. An unknown handle, or a data file that is gone or no longer a regular
	// file, gives an error wrapping ErrNotFound (the host then starts the object again).
	PartFile(ctx context.Context, handle []byte) (path string, err error)

	// RecordPart records part p as written into the data file at its offset by the host
	// and durable there, and returns its receipt, as PutPart would after writing it. It
	// does not read the bytes back. A part recorded again replaces the earlier one, whose
	// receipt becomes stale; an unknown handle gives an error wrapping ErrNotFound.
	RecordPart(ctx context.Context, handle []byte, p PartInfo) (receipt []byte, err error)
}
