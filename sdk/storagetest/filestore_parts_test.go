package storagetest_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

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
