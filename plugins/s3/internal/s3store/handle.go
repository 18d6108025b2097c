package s3store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// handle is what a part-wise object's opaque handle encodes: everything needed to reach its
// multipart upload again from another process, and to check the calls made with it.
type handle struct {
	bucket   string
	key      string
	uploadID string
	// nonce is a random id also stored in the object's metadata (metaObjectID), so that a
	// commit whose upload is gone can tell "committed by this handle" from "not there".
	nonce []byte
	spec  sdk.ObjectSpec // spec.SHA256 is the digest declared at BeginObject, or nil
	// sha256Parts: the upload was created with ChecksumAlgorithm SHA256, so every part
	// carries its SHA-256 and CompleteMultipartUpload must name it.
	sha256Parts bool
}

// Encoding, version 1 (all integers unsigned varints, strings length-prefixed):
//
//	0x01 | bucket | key | upload id | nonce | size | part size | part count | flags | [sha256]
//
// flags bit 0: sha256Parts; bit 1: a declared 32-byte SHA-256 follows. Nothing may follow.
// A receipt, version 1, is:
//
//	0x01 | part number (from 0) | ETag | sha256 (32 bytes)
const (
	handleV1  = 1
	receiptV1 = 1

	nonceLen       = 16
	maxUploadIDLen = 1024 // AWS's are about 150 bytes, versitygw's 36
	maxETagLen     = 256

	flagSHA256Parts = 1 << 0
	flagDeclared    = 1 << 1
)

// errBadHandle is wrapped (with sdk.ErrNotFound) by every handle decoding failure: a handle
// this store cannot have issued names no upload it knows.
var errBadHandle = errors.New("s3: not a handle of this store")

func (h *handle) encode() []byte {
	b := []byte{handleV1}
	b = appendBytes(b, []byte(h.bucket))
	b = appendBytes(b, []byte(h.key))
	b = appendBytes(b, []byte(h.uploadID))
	b = appendBytes(b, h.nonce)
	b = binary.AppendUvarint(b, uint64(h.spec.Size))
	b = binary.AppendUvarint(b, uint64(h.spec.PartSize))
	b = binary.AppendUvarint(b, uint64(h.spec.PartCount))
	var flags byte
	if h.sha256Parts {
		flags |= flagSHA256Parts
	}
	if h.spec.SHA256 != nil {
		flags |= flagDeclared
	}
	b = append(b, flags)
	return append(b, h.spec.SHA256...)
}

// decodeHandle parses and checks a handle: it must be well formed, name this store's bucket,
// a valid key, and an object within S3's and this store's part limits. Errors wrap
// sdk.ErrNotFound.
func (s *Store) decodeHandle(b []byte) (*handle, error) {
	h, err := parseHandle(b)
	if err == nil && h.bucket != s.cfg.Bucket {
		err = fmt.Errorf("it names bucket %q, this store uses %q", h.bucket, s.cfg.Bucket)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %w", sdk.ErrNotFound, errBadHandle, err)
	}
	return h, nil
}

func parseHandle(b []byte) (*handle, error) {
	d := decoder{b: b}
	if v := d.byte(); v != handleV1 {
		return nil, fmt.Errorf("unknown handle version %d", v)
	}
	h := &handle{
		bucket:   string(d.bytes(255)),
		key:      string(d.bytes(sdk.MaxKeyLength)),
		uploadID: string(d.bytes(maxUploadIDLen)),
		nonce:    d.bytes(nonceLen),
	}
	h.spec.Size = d.int(maxObjectLen)
	h.spec.PartSize = d.int(maxPartSize)
	h.spec.PartCount = int(d.int(maxParts))
	flags := d.byte()
	if flags&flagDeclared != 0 {
		h.spec.SHA256 = d.fixed(32)
	}
	h.sha256Parts = flags&flagSHA256Parts != 0
	switch {
	case d.err != nil:
		return nil, d.err
	case len(d.b) != 0:
		return nil, fmt.Errorf("%d bytes after the end", len(d.b))
	case flags&^(flagSHA256Parts|flagDeclared) != 0:
		return nil, fmt.Errorf("unknown flags %#x", flags)
	case len(h.nonce) != nonceLen:
		return nil, fmt.Errorf("nonce of %d bytes", len(h.nonce))
	case h.uploadID == "" || !printable(h.uploadID):
		return nil, fmt.Errorf("upload id %q", h.uploadID)
	}
	if err := sdk.ValidKey(h.key); err != nil {
		return nil, err
	}
	if err := checkSpec(h.spec); err != nil {
		return nil, err
	}
	return h, nil
}

// receipt is what PutPart returns: the part as S3 stored it.
type receipt struct {
	number int    // from 0, as the host counts
	etag   string // as S3 returned it, quotes included
	sha256 []byte
}

func (r *receipt) encode() []byte {
	b := []byte{receiptV1}
	b = binary.AppendUvarint(b, uint64(r.number))
	b = appendBytes(b, []byte(r.etag))
	return append(b, r.sha256...)
}

// decodeReceipt parses a receipt; errors wrap sdk.ErrStaleReceipt.
func decodeReceipt(b []byte) (*receipt, error) {
	d := decoder{b: b}
	v := d.byte()
	r := &receipt{number: int(d.int(maxParts - 1)), etag: string(d.bytes(maxETagLen)), sha256: d.fixed(32)}
	switch {
	case v != receiptV1 && d.err == nil:
		d.err = fmt.Errorf("unknown receipt version %d", v)
	case d.err == nil && len(d.b) != 0:
		d.err = fmt.Errorf("%d bytes after the end", len(d.b))
	case d.err == nil && (r.etag == "" || !printable(r.etag)):
		d.err = fmt.Errorf("ETag %q", r.etag)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: not a receipt of this store: %w", sdk.ErrStaleReceipt, d.err)
	}
	return r, nil
}

// checkSpec checks that an object fits S3's multipart limits and this store's PartLimits.
// Errors wrap sdk.ErrNotSupported.
func checkSpec(spec sdk.ObjectSpec) error {
	if err := spec.Check(); err != nil {
		return err
	}
	switch {
	case spec.PartCount == 0:
		return fmt.Errorf("%w: an empty object has no parts (S3 needs at least one)", sdk.ErrNotSupported)
	case spec.Size > maxObjectLen:
		return fmt.Errorf("%w: %d bytes exceed S3's object size limit of 5 TiB", sdk.ErrNotSupported, spec.Size)
	case spec.PartSizeOf(0) > maxPartSize:
		return fmt.Errorf("%w: parts of %d bytes exceed S3's part size limit of 5 GiB", sdk.ErrNotSupported, spec.PartSizeOf(0))
	case !partLimits.Allows(spec):
		return fmt.Errorf("%w: %d parts of %d bytes are outside S3's limits (parts but the last of at least %d bytes, at most %d parts)",
			sdk.ErrNotSupported, spec.PartCount, spec.PartSize, partLimits.MinPartSize, partLimits.MaxParts)
	}
	return nil
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// printable reports whether s is non-control ASCII, as upload ids and ETags are.
func printable(s string) bool {
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// decoder reads the fields of a handle or receipt; the first problem sticks in err and
// later reads return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errors.New("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// int reads an unsigned varint of at most limit.
func (d *decoder) int(limit int64) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("truncated or overlong number")
		return 0
	}
	if v > uint64(limit) {
		d.err = fmt.Errorf("number %d above %d", v, limit)
		return 0
	}
	d.b = d.b[n:]
	return int64(v)
}

// bytes reads a length-prefixed field of at most limit bytes (a copy).
func (d *decoder) bytes(limit int) []byte {
	n := d.int(int64(limit))
	return d.fixed(int(n))
}

// fixed reads n bytes (a copy).
func (d *decoder) fixed(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.err = errors.New("truncated")
		return nil
	}
	v := bytes.Clone(d.b[:n])
	d.b = d.b[n:]
	return v
}
