package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

var _ PartFiler = (*fakeBackend)(nil)

// enablePartFiles makes the fake offer part files in dir (call after enableParts).
func (f *fakeBackend) enablePartFiles(dir string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partDir = dir
}

func (f *fakeBackend) PartFiles() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.partDir != "" && !f.noNewPartFiles
}

func (f *fakeBackend) OffersPartFiles() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.partDir != ""
}

// partFilePath returns the file of the unfinished object handle, or an error wrapping
// sdk.ErrNotFound.
func (f *fakeBackend) partFilePath(handle []byte) (string, *fakeObject, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.unfinished[string(handle)]
	if !ok || f.partDir == "" {
		return "", nil, fmt.Errorf("%w: fake handle %s", sdk.ErrNotFound, handle)
	}
	return filepath.Join(f.partDir, hex.EncodeToString(handle)), o, nil
}

func (f *fakeBackend) OpenPartFile(ctx context.Context, handle []byte, flag int) (*os.File, error) {
	path, _, err := f.partFilePath(handle)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	gate, delay := f.partFileReads, f.partFileReadDelay
	f.mu.Unlock()
	if delay > 0 && flag == os.O_RDONLY {
		time.Sleep(delay)
	}
	if gate != nil && flag == os.O_RDONLY {
		select { // the digest reading a part back waits
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	_, o, _ := f.partFilePath(handle)
	file, err := os.OpenFile(path, flag|os.O_CREATE, 0o600)
	if err == nil && flag != os.O_RDONLY {
		size := o.spec.Size // the object's size, as sdk.PartFiles requires
		f.mu.Lock()
		if f.partFileWrongSize {
			size++
		}
		f.mu.Unlock()
		err = file.Truncate(size)
	}
	return file, err
}

// RecordPart reads the part back from the file (a fake may) and keeps it.
func (f *fakeBackend) RecordPart(ctx context.Context, handle []byte, p sdk.PartInfo) ([]byte, error) {
	f.mu.Lock()
	refuse := f.refuseRecord
	f.mu.Unlock()
	if refuse != nil {
		return nil, refuse
	}
	path, o, err := f.partFilePath(handle)
	if err != nil {
		return nil, err
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	b := make([]byte, p.Size)
	if _, err := file.ReadAt(b, int64(p.Number)*o.spec.PartSize); err != nil {
		return nil, fmt.Errorf("fake record part %d: %w", p.Number, err)
	}
	if sum := sha256.Sum256(b); !bytes.Equal(sum[:], p.SHA256) {
		return nil, fmt.Errorf("%w: fake record part %d: the file holds other bytes", sdk.ErrDigestMismatch, p.Number)
	}
	f.mu.Lock()
	f.recorded++
	f.mu.Unlock()
	return f.keepPart(handle, p.Number, b)
}

// spoilPartFile flips a byte of part n in the part file of the object under key.
func (f *fakeBackend) spoilPartFile(key string, n int) error {
	f.mu.Lock()
	var handle []byte
	var o *fakeObject
	for h, obj := range f.unfinished {
		if obj.key == key {
			handle, o = []byte(h), obj
		}
	}
	f.mu.Unlock()
	if o == nil {
		return fmt.Errorf("no unfinished object under %s", key)
	}
	path, _, err := f.partFilePath(handle)
	if err != nil {
		return err
	}
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer file.Close()
	off := int64(n)*o.spec.PartSize + 7
	b := make([]byte, 1)
	if _, err := file.ReadAt(b, off); err != nil {
		return err
	}
	b[0] ^= 0xff
	_, err = file.WriteAt(b, off)
	return err
}
