package partfile

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// MaxParts is the most parts of one object a Handle describes. It keeps a commit within
// the plugin's gRPC message limit (the receipts of all parts travel in one message, about
// 55 bytes each) and a journal within 64 bytes per part. Plugins report it in
// sdk.PartLimits; the host stores larger objects with Put.
const MaxParts = 50_000

// File-name suffixes of an unfinished object.
const (
	DataSuffix    = ".partial"
	JournalSuffix = ".journal"
)

const (
	handleVersion = 1
	handleFixed   = 1 + 8 + 8 + 8 + 4 + 2 + 4 // every field but the key
	idHexLen      = 16
	// maxBase bounds the key's last segment in a file name: "." + base + "." + id + suffix
	// (both suffixes have 8 bytes) stays within sdk.MaxSegmentLength.
	maxBase = sdk.MaxSegmentLength - 1 - 1 - idHexLen - len(DataSuffix)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Handle is an unfinished part-wise object: Size bytes under Key in Parts parts of PartSize
// bytes (the last one the remainder), kept in the files named by DataName and JournalName.
type Handle struct {
	Key      string
	ID       [8]byte // random; names the files
	Size     int64
	PartSize int64
	Parts    int
}

// New returns the handle of a new unfinished object under key with a random ID. It fails
// with an error wrapping sdk.ErrInvalidKey for a key sdk.ValidKey refuses, sdk.ErrSizeMismatch
// for an inconsistent spec, and sdk.ErrNotSupported for more than MaxParts parts.
func New(key string, spec sdk.ObjectSpec) (Handle, error) {
	if err := sdk.ValidKey(key); err != nil {
		return Handle{}, err
	}
	if err := spec.Check(); err != nil {
		return Handle{}, err
	}
	if spec.PartCount > MaxParts {
		return Handle{}, fmt.Errorf("%w: %d parts, at most %d", sdk.ErrNotSupported, spec.PartCount, MaxParts)
	}
	h := Handle{Key: key, Size: spec.Size, PartSize: spec.PartSize, Parts: spec.PartCount}
	if _, err := rand.Read(h.ID[:]); err != nil {
		return Handle{}, fmt.Errorf("partfile: random id: %w", err)
	}
	return h, nil
}

// Marshal encodes h in the format Parse reads (see the package documentation). A Handle
// from New or Parse encodes to at most handleFixed+sdk.MaxKeyLength bytes, well within
// sdk.MaxHandleSize.
func (h Handle) Marshal() []byte {
	b := make([]byte, 0, handleFixed+len(h.Key))
	b = append(b, handleVersion)
	b = append(b, h.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(h.PartSize))
	b = binary.BigEndian.AppendUint32(b, uint32(h.Parts))
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Key)))
	b = append(b, h.Key...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// Parse decodes a handle made by Marshal and checks it: its version, checksum, key
// (sdk.ValidKey) and sizes. Whatever it refuses gives an error wrapping sdk.ErrNotFound: a
// handle this backend did not make names no object of it.
func Parse(b []byte) (Handle, error) {
	bad := func(why string) (Handle, error) {
		return Handle{}, fmt.Errorf("%w: not a part-wise object handle of this backend: %s", sdk.ErrNotFound, why)
	}
	if len(b) < handleFixed {
		return bad(fmt.Sprintf("%d bytes", len(b)))
	}
	if b[0] != handleVersion {
		return bad(fmt.Sprintf("version %d", b[0]))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return bad("checksum mismatch")
	}
	var h Handle
	copy(h.ID[:], b[1:9])
	size, partSize := binary.BigEndian.Uint64(b[9:17]), binary.BigEndian.Uint64(b[17:25])
	parts := binary.BigEndian.Uint32(b[25:29])
	keyLen := int(binary.BigEndian.Uint16(b[29:31]))
	if handleFixed+keyLen != len(b) {
		return bad("key length does not match")
	}
	if size > 1<<62 || partSize > 1<<62 || parts > MaxParts {
		return bad("sizes out of range")
	}
	h.Size, h.PartSize, h.Parts = int64(size), int64(partSize), int(parts)
	h.Key = string(b[31 : 31+keyLen])
	if err := sdk.ValidKey(h.Key); err != nil {
		return bad(err.Error())
	}
	if err := h.Spec().Check(); err != nil {
		return bad(err.Error())
	}
	return h, nil
}

// Spec returns the object's sizes.
func (h Handle) Spec() sdk.ObjectSpec {
	return sdk.ObjectSpec{Size: h.Size, PartSize: h.PartSize, PartCount: h.Parts}
}

// PartOffset returns the offset of part n in the object.
func (h Handle) PartOffset(n int) int64 { return int64(n) * h.PartSize }

// Dir returns the slash-separated directory of the key's target, "" at the top.
func (h Handle) Dir() string {
	if d := path.Dir(h.Key); d != "." {
		return d
	}
	return ""
}

// DataName returns the base name of the file holding the object's bytes,
// Prefix(Key) + hex(ID) + DataSuffix; it lives in Dir.
func (h Handle) DataName() string { return Prefix(h.Key) + hex.EncodeToString(h.ID[:]) + DataSuffix }

// JournalName returns the base name of the object's journal, Prefix(Key) + hex(ID) +
// JournalSuffix; it lives in Dir.
func (h Handle) JournalName() string {
	return Prefix(h.Key) + hex.EncodeToString(h.ID[:]) + JournalSuffix
}

// Prefix returns how the names of every unfinished object of key begin: "." + the key's
// last segment + ".". A segment too long to fit a file name with the id and suffix is cut
// (at a character boundary) and followed by "~" and 16 hexadecimal digits of its SHA-256,
// so two long names that begin alike still get prefixes of their own.
func Prefix(key string) string {
	base := path.Base(key)
	if len(base) > maxBase {
		sum := sha256.Sum256([]byte(base))
		tag := "~" + hex.EncodeToString(sum[:8])
		cut := base[:maxBase-len(tag)]
		for !utf8.ValidString(cut) {
			cut = cut[:len(cut)-1]
		}
		base = cut + tag
	}
	return "." + base + "."
}

// ParseName reports whether name, a base name in the directory of key's target, is the data
// file or the journal of an unfinished object of key, and returns the object's ID.
func ParseName(key, name string) (id [8]byte, journal, ok bool) {
	prefix := Prefix(key)
	if len(name) != len(prefix)+idHexLen+len(DataSuffix) || !strings.HasPrefix(name, prefix) {
		return id, false, false
	}
	rest := name[len(prefix):]
	switch rest[idHexLen:] {
	case DataSuffix:
	case JournalSuffix:
		journal = true
	default:
		return id, false, false
	}
	digits := rest[:idHexLen]
	if strings.ToLower(digits) != digits {
		return id, false, false
	}
	if _, err := hex.Decode(id[:], []byte(digits)); err != nil {
		return id, false, false
	}
	return id, journal, true
}

// WithID returns the handle of key's unfinished object id, for removing its files: the
// sizes are unknown, so it is good for DataName, JournalName and Dir only.
func WithID(key string, id [8]byte) Handle { return Handle{Key: key, ID: id} }
