package storagetest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// fileStore is a conforming Storage and PartStorage over a directory, the reference for the
// part-wise cases. Objects are files under root at their keys. An unfinished part-wise
// object is a directory under root/partsDir named by its handle, holding meta (its key and
// spec), data (the object's bytes, each part written at its offset) and for every part
// whose bytes in data are intact a record part-N with the nonce its receipt carries. A
// record is removed before its part is written again, so a failed PutPart leaves the part
// absent and its earlier receipt stale. Commit renames data into place. Handles committed
// are journalled under state, outside root (as a backend's own metadata would be), so that
// a second commit reports the object.
//
// bug, when not empty, names a deliberate defect (see the bug* constants) that the suite
// must catch.
type fileStore struct {
	root, state string
	limits      sdk.PartLimits
	bug         string

	mu    sync.Mutex
	locks map[string]*sync.Mutex // part writes, by handle and part number
	ids   map[string]string      // bugMemHandle: handle → directory id
}

const partsDir = ".storagetest-parts"

// The deliberate defects of fileStore.
const (
	bugStaleOK        = "stale-ok"        // CommitObject does not check the receipts, only their count
	bugAbortLeaks     = "abort-leaks"     // AbortObject forgets the handle but leaves the part data
	bugNoDigest       = "no-digest"       // PutPart does not compare the bytes with the part's SHA-256
	bugMemHandle      = "mem-handle"      // handles are known only to the instance that made them
	bugNoBeginAbort   = "no-begin-abort"  // BeginObject leaves earlier unfinished objects of the key
	bugNilAbortNoop   = "nil-abort-noop"  // AbortObject(key, nil) does nothing
	bugPrefixAbort    = "prefix-abort"    // AbortObject(key, nil) also aborts keys that key is a prefix of
	bugKeepOnFail     = "keep-on-fail"    // a failed PutPart leaves the earlier receipt valid
	bugCommitOnce     = "commit-once"     // a second commit answers ErrNotFound
	bugNoSpecCheck    = "no-spec-check"   // PutPart accepts a part whose size is not the object's
	bugVisibleEarly   = "visible-early"   // CommitObject puts the object in place before checking receipts
	bugAbortCommitted = "abort-committed" // AbortObject of a committed handle deletes the object
	bugWrongOffset    = "wrong-offset"    // part n is written at n times its own size
	bugBufferParts    = "buffer-parts"    // PutPart reads the whole part into memory first
	bugHandleErr      = "handle-error"    // an unknown or forged handle gives a plain error, not ErrNotFound
	bugNoCountCheck   = "no-count-check"  // CommitObject does not check the number of receipts
	bugLastByteLost   = "last-byte-lost"  // the commit drops the last byte of the object
	bugDeclineAll     = "decline-all"     // BeginObject declines every object (ErrNotSupported)
	bugSumIgnored     = "sum-ignored"     // CommitObject reports no SHA-256
)

func newFileStore(root, state string, limits sdk.PartLimits, bug string) *fileStore {
	return &fileStore{root: root, state: state, limits: limits, bug: bug, locks: map[string]*sync.Mutex{}, ids: map[string]string{}}
}

func (s *fileStore) path(key string) string { return filepath.Join(s.root, filepath.FromSlash(key)) }

func (s *fileStore) checkKey(key string) error {
	if err := sdk.ValidKey(key); err != nil {
		return err
	}
	if key == partsDir || strings.HasPrefix(key, partsDir+"/") {
		return fmt.Errorf("%w: %s is the store's own", sdk.ErrInvalidKey, key)
	}
	return nil
}

func (s *fileStore) Put(ctx context.Context, key string, r io.Reader, size int64) (sdk.Object, error) {
	if err := s.checkKey(key); err != nil {
		return sdk.Object{}, err
	}
	tmp, err := os.CreateTemp(s.root, ".put-*")
	if err != nil {
		return sdk.Object{}, fmt.Errorf("file: put %s: %w", key, err)
	}
	defer os.Remove(tmp.Name()) // fails once renamed
	sum, err := sdk.CopyExact(tmp, ctxReader{ctx, r}, size)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.place(tmp.Name(), key)
	}
	if err != nil {
		return sdk.Object{}, fmt.Errorf("file: put %s: %w", key, err)
	}
	return sdk.Object{Key: key, Size: size, SHA256: sum, Location: s.path(key)}, nil
}

// place renames the file at from to key's path.
func (s *fileStore) place(from, key string) error {
	dst := s.path(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.Rename(from, dst)
}

func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func (s *fileStore) Stat(_ context.Context, key string) (sdk.Object, error) {
	if err := s.checkKey(key); err != nil {
		return sdk.Object{}, err
	}
	fi, err := os.Stat(s.path(key))
	if err != nil && !notFound(err) {
		return sdk.Object{}, fmt.Errorf("file: stat %s: %w", key, err)
	}
	if err != nil || !fi.Mode().IsRegular() {
		return sdk.Object{}, fmt.Errorf("file: %s: %w", key, sdk.ErrNotFound)
	}
	return sdk.Object{Key: key, Size: fi.Size(), Location: s.path(key)}, nil
}

func (s *fileStore) Delete(_ context.Context, key string) error {
	if err := s.checkKey(key); err != nil {
		return err
	}
	fi, err := os.Lstat(s.path(key))
	if notFound(err) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err == nil {
		err = os.Remove(s.path(key))
	}
	if err != nil {
		return fmt.Errorf("file: delete %s: %w", key, err)
	}
	return nil
}

// meta is what an unfinished object's directory records of it.
type meta struct {
	Key       string `json:"key"`
	Size      int64  `json:"size"`
	PartSize  int64  `json:"part_size"`
	PartCount int    `json:"part_count"`
}

func (m meta) spec() sdk.ObjectSpec {
	return sdk.ObjectSpec{Size: m.Size, PartSize: m.PartSize, PartCount: m.PartCount}
}

// PartLimits implements sdk.PartStorage. The store has no limits of its own; the tests give
// it some to reach the suite's checks of limits.
func (s *fileStore) PartLimits() sdk.PartLimits { return s.limits }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *fileStore) BeginObject(ctx context.Context, key string, spec sdk.ObjectSpec) ([]byte, error) {
	if err := s.checkKey(key); err != nil {
		return nil, err
	}
	if err := spec.Check(); err != nil {
		return nil, err
	}
	if s.bug == bugDeclineAll {
		return nil, fmt.Errorf("file: %w: declined", sdk.ErrNotSupported)
	}
	if s.bug != bugNoBeginAbort {
		if err := s.abortKey(key, false); err != nil {
			return nil, err
		}
	}
	id := randomHex(16)
	dir := filepath.Join(s.root, partsDir, id)
	m, _ := json.Marshal(meta{Key: key, Size: spec.Size, PartSize: spec.PartSize, PartCount: spec.PartCount})
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		err = writeFileSync(filepath.Join(dir, "meta"), m)
	}
	if err == nil {
		var f *os.File
		if f, err = os.Create(filepath.Join(dir, "data")); err == nil {
			err = f.Truncate(spec.Size)
			if serr := f.Sync(); err == nil {
				err = serr
			}
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("file: begin %s: %w", key, err)
	}
	switch s.bug {
	case bugMemHandle:
		h := "m" + randomHex(8)
		s.mu.Lock()
		s.ids[h] = id
		s.mu.Unlock()
		return []byte(h), nil
	}
	return []byte(id), nil
}

// writeFileSync writes b to a new file at name through a temporary and a rename.
func writeFileSync(name string, b []byte) error {
	tmp := name + ".tmp-" + randomHex(4)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// idOf returns the directory id of handle h, or an error wrapping ErrNotFound.
func (s *fileStore) idOf(h []byte) (string, error) {
	switch s.bug {
	case bugMemHandle:
		s.mu.Lock()
		defer s.mu.Unlock()
		if id, ok := s.ids[string(h)]; ok {
			return id, nil
		}
	default:
		if b, err := hex.DecodeString(string(h)); err == nil && len(b) == 16 {
			return string(h), nil
		}
	}
	if s.bug == bugHandleErr {
		return "", fmt.Errorf("file: malformed handle %q", h)
	}
	return "", fmt.Errorf("file: handle %q: %w", h, sdk.ErrNotFound)
}

// open returns the directory and meta of the unfinished object of h.
func (s *fileStore) open(h []byte) (string, meta, error) {
	id, err := s.idOf(h)
	if err != nil {
		return "", meta{}, err
	}
	dir := filepath.Join(s.root, partsDir, id)
	var m meta
	b, err := os.ReadFile(filepath.Join(dir, "meta"))
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if notFound(err) {
		if s.bug == bugHandleErr {
			return "", meta{}, fmt.Errorf("file: no object %s", id)
		}
		return "", meta{}, fmt.Errorf("file: unfinished object %s: %w", id, sdk.ErrNotFound)
	}
	if err != nil {
		return "", meta{}, fmt.Errorf("file: unfinished object %s: %w", id, err)
	}
	return dir, m, nil
}

// lock serializes the writes of part n of the object in dir.
func (s *fileStore) lock(dir string, n int) func() {
	k := dir + "/" + strconv.Itoa(n)
	s.mu.Lock()
	l, ok := s.locks[k]
	if !ok {
		l = &sync.Mutex{}
		s.locks[k] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func record(dir string, n int) string { return filepath.Join(dir, "part-"+strconv.Itoa(n)) }

func (s *fileStore) PutPart(ctx context.Context, h []byte, p sdk.PartInfo, r io.Reader) ([]byte, error) {
	dir, m, err := s.open(h)
	if err != nil {
		return nil, fmt.Errorf("file: put part %d: %w", p.Number, err)
	}
	spec := m.spec()
	if p.Number < 0 || p.Number >= spec.PartCount {
		return nil, fmt.Errorf("file: %w: part %d of an object of %d parts", sdk.ErrSizeMismatch, p.Number, spec.PartCount)
	}
	if p.Size != spec.PartSizeOf(p.Number) && s.bug != bugNoSpecCheck {
		return nil, fmt.Errorf("file: %w: part %d of %d bytes, the object's has %d", sdk.ErrSizeMismatch, p.Number, p.Size, spec.PartSizeOf(p.Number))
	}
	defer s.lock(dir, p.Number)()
	if s.bug != bugKeepOnFail {
		if err := os.Remove(record(dir, p.Number)); err != nil && !notFound(err) {
			return nil, fmt.Errorf("file: put part %d: %w", p.Number, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_WRONLY, 0)
	if notFound(err) {
		return nil, fmt.Errorf("file: put part %d: %w", p.Number, sdk.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("file: put part %d: %w", p.Number, err)
	}
	defer f.Close()
	off := int64(p.Number) * spec.PartSize
	if s.bug == bugWrongOffset {
		off = int64(p.Number) * p.Size
	}
	var src io.Reader = ctxReader{ctx, r}
	if s.bug == bugBufferParts {
		b, err := io.ReadAll(src)
		if err != nil {
			return nil, fmt.Errorf("file: put part %d: %w", p.Number, err)
		}
		src = bytes.NewReader(b)
	}
	sum, err := sdk.CopyExact(io.NewOffsetWriter(f, off), src, p.Size)
	if err == nil && !bytes.Equal(sum, p.SHA256) && s.bug != bugNoDigest {
		err = fmt.Errorf("%w: part %d has sha256 %x, not %x", sdk.ErrDigestMismatch, p.Number, sum, p.SHA256)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = f.Sync()
	}
	nonce := randomHex(16)
	if err == nil {
		err = writeFileSync(record(dir, p.Number), []byte(nonce))
		if notFound(err) {
			err = fmt.Errorf("aborted meanwhile: %w", sdk.ErrNotFound)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("file: put part %d: %w", p.Number, err)
	}
	return []byte(strconv.Itoa(p.Number) + ":" + nonce), nil
}

// journal is the record of a committed handle.
type journal struct {
	Key    string `json:"key"`
	SHA256 []byte `json:"sha256"`
}

func (s *fileStore) CommitObject(ctx context.Context, h []byte, receipts [][]byte, sum []byte) (sdk.Object, error) {
	dir, m, err := s.open(h)
	if errors.Is(err, sdk.ErrNotFound) && s.bug != bugCommitOnce {
		if obj, ok := s.committed(h); ok {
			return obj, nil
		}
	}
	if err != nil {
		return sdk.Object{}, fmt.Errorf("file: commit: %w", err)
	}
	if s.bug == bugVisibleEarly {
		if err := s.placeCopy(dir, m.Key); err != nil {
			return sdk.Object{}, err
		}
	}
	if err := s.checkReceipts(dir, m, receipts); err != nil {
		return sdk.Object{}, fmt.Errorf("file: commit %s: %w", m.Key, err)
	}
	id, _ := s.idOf(h)
	j, _ := json.Marshal(journal{Key: m.Key, SHA256: sum})
	if err := writeFileSync(filepath.Join(s.state, id), j); err != nil {
		return sdk.Object{}, fmt.Errorf("file: commit %s: %w", m.Key, err)
	}
	data := filepath.Join(dir, "data")
	if s.bug == bugLastByteLost && m.Size > 0 {
		os.Truncate(data, m.Size-1)
	}
	if err := s.place(data, m.Key); err != nil {
		return sdk.Object{}, fmt.Errorf("file: commit %s: %w", m.Key, err)
	}
	os.RemoveAll(dir)
	obj := sdk.Object{Key: m.Key, Size: m.Size, SHA256: sum, Location: s.path(m.Key)}
	if s.bug == bugSumIgnored {
		obj.SHA256 = nil
	}
	return obj, nil
}

// placeCopy copies the unfinished data of dir to key's path (bugVisibleEarly).
func (s *fileStore) placeCopy(dir, key string) error {
	b, err := os.ReadFile(filepath.Join(dir, "data"))
	if err == nil {
		tmp := filepath.Join(s.root, ".early-"+randomHex(4))
		if err = os.WriteFile(tmp, b, 0o644); err == nil {
			err = s.place(tmp, key)
		}
	}
	return err
}

func (s *fileStore) checkReceipts(dir string, m meta, receipts [][]byte) error {
	if len(receipts) != m.PartCount && s.bug != bugNoCountCheck {
		return fmt.Errorf("%w: %d receipts for %d parts", sdk.ErrStaleReceipt, len(receipts), m.PartCount)
	}
	if s.bug == bugStaleOK {
		return nil
	}
	for n, r := range receipts {
		want, err := os.ReadFile(record(dir, n))
		if notFound(err) {
			return fmt.Errorf("%w: part %d is absent", sdk.ErrStaleReceipt, n)
		}
		if err != nil {
			return err
		}
		if !bytes.Equal(r, []byte(strconv.Itoa(n)+":"+string(want))) {
			return fmt.Errorf("%w: part %d was replaced or never stored", sdk.ErrStaleReceipt, n)
		}
	}
	return nil
}

// committed reports the object a committed handle made.
func (s *fileStore) committed(h []byte) (sdk.Object, bool) {
	id, err := s.idOf(h)
	if err != nil {
		return sdk.Object{}, false
	}
	b, err := os.ReadFile(filepath.Join(s.state, id))
	var j journal
	if err != nil || json.Unmarshal(b, &j) != nil {
		return sdk.Object{}, false
	}
	obj, err := s.Stat(context.Background(), j.Key)
	if err != nil {
		return sdk.Object{}, false
	}
	obj.SHA256 = j.SHA256
	return obj, true
}

func (s *fileStore) AbortObject(ctx context.Context, key string, h []byte) error {
	if err := s.checkKey(key); err != nil {
		return err
	}
	if h == nil {
		if s.bug == bugNilAbortNoop {
			return nil
		}
		return s.abortKey(key, s.bug == bugPrefixAbort)
	}
	if s.bug == bugAbortCommitted {
		if obj, ok := s.committed(h); ok {
			return s.Delete(ctx, obj.Key)
		}
	}
	id, err := s.idOf(h)
	if errors.Is(err, sdk.ErrNotFound) || (err != nil && s.bug == bugHandleErr) {
		return nil
	}
	return s.remove(filepath.Join(s.root, partsDir, id))
}

// remove removes the unfinished object in dir: renamed first, so that a PutPart still
// running finds it gone rather than writing into a directory being removed.
func (s *fileStore) remove(dir string) error {
	if s.bug == bugAbortLeaks {
		err := os.Remove(filepath.Join(dir, "meta"))
		if err != nil && !notFound(err) {
			return fmt.Errorf("file: abort: %w", err)
		}
		return nil
	}
	dead := filepath.Join(s.root, partsDir, ".dead-"+randomHex(8))
	if err := os.Rename(dir, dead); notFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("file: abort: %w", err)
	}
	if err := os.RemoveAll(dead); err != nil {
		return fmt.Errorf("file: abort: %w", err)
	}
	return nil
}

// abortKey removes every unfinished object under key (under keys starting with key too,
// if prefix).
func (s *fileStore) abortKey(key string, prefix bool) error {
	entries, err := os.ReadDir(filepath.Join(s.root, partsDir))
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("file: abort %s: %w", key, err)
	}
	for _, d := range entries {
		dir := filepath.Join(s.root, partsDir, d.Name())
		b, err := os.ReadFile(filepath.Join(dir, "meta"))
		var m meta
		if err != nil || json.Unmarshal(b, &m) != nil {
			continue // being removed, or not an object
		}
		if m.Key == key || (prefix && strings.HasPrefix(m.Key, key)) {
			if err := s.remove(dir); err != nil {
				return err
			}
		}
	}
	return nil
}
