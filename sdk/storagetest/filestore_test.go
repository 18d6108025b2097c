package storagetest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
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
