package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/pluginhost"
)

// fakeObject is an unfinished part-wise object of the fake backend.
type fakeObject struct {
	key     string
	spec    sdk.ObjectSpec
	parts   map[int][]byte
	version map[int]int
}

// enableParts makes the fake a part-wise backend (call before Init).
func (f *fakeBackend) enableParts() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partwise = &sdk.PartLimits{}
	f.unfinished = map[string]*fakeObject{}
}

func (f *fakeBackend) Parts() *sdk.PartLimits {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.partwise
}

// StagedReads is pluginmgr.Manager's: whether PutPart may be given a
// *pluginhost.StagedPart to read from its file.
func (f *fakeBackend) StagedReads() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.staged
}

func (f *fakeBackend) BeginObject(ctx context.Context, key string, spec sdk.ObjectSpec) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.partwise == nil {
		return nil, sdk.ErrNotSupported
	}
	if f.declineParts {
		return nil, fmt.Errorf("%w: fake declines", sdk.ErrNotSupported)
	}
	if f.beginFail != nil {
		f.beginTries++
		return nil, f.beginFail
	}
	for h, o := range f.unfinished {
		if o.key == key {
			delete(f.unfinished, h)
		}
	}
	f.begins++
	h := key + "#" + strconv.Itoa(f.begins)
	f.unfinished[h] = &fakeObject{key: key, spec: spec, parts: map[int][]byte{}, version: map[int]int{}}
	return []byte(h), nil
}

func (f *fakeBackend) PutPart(ctx context.Context, handle []byte, p sdk.PartInfo, r io.Reader) ([]byte, error) {
	f.mu.Lock()
	f.partPuts++
	count := f.partPuts
	fail := f.partFail
	f.mu.Unlock()
	if sp, ok := r.(*pluginhost.StagedPart); ok && f.StagedReads() {
		// Read the file, as a plugin with staged reads does, and check its CRC-32C.
		b, err := os.ReadFile(sp.Path)
		if err != nil || crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) != sp.CRC32C {
			return nil, fmt.Errorf("%w: fake staged part %d: %v", sdk.ErrDigestMismatch, p.Number, err)
		}
		f.mu.Lock()
		f.stagedParts++
		f.mu.Unlock()
		r = bytes.NewReader(b)
	}
	var buf bytes.Buffer
	sum, err := sdk.CopyExact(&buf, r, p.Size)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(sum, p.SHA256) {
		return nil, fmt.Errorf("%w: fake part %d", sdk.ErrDigestMismatch, p.Number)
	}
	if fail != nil {
		if err := fail(p.Number, count); err != nil {
			return nil, err
		}
	}
	if hold := f.partHold; hold != nil {
		if f.partHeld != nil {
			f.partHeld <- struct{}{}
		}
		select {
		case <-hold:
		case <-ctx.Done():
			go func() {
				<-hold
				f.keepPart(handle, p.Number, buf.Bytes())
			}()
			return nil, ctx.Err()
		}
	}
	return f.keepPart(handle, p.Number, buf.Bytes())
}

// keepPart stores part n of the unfinished object handle and returns its receipt.
func (f *fakeBackend) keepPart(handle []byte, n int, b []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.unfinished[string(handle)]
	if !ok {
		return nil, fmt.Errorf("%w: fake handle %s", sdk.ErrNotFound, handle)
	}
	o.parts[n] = b
	o.version[n]++
	return []byte(fmt.Sprintf("%d:%d", n, o.version[n])), nil
}

func (f *fakeBackend) CommitObject(ctx context.Context, handle []byte, receipts [][]byte, sum []byte) (sdk.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.unfinished[string(handle)]
	if !ok {
		return sdk.Object{}, fmt.Errorf("%w: fake handle %s", sdk.ErrNotFound, handle)
	}
	if len(receipts) != o.spec.PartCount {
		return sdk.Object{}, fmt.Errorf("%w: %d receipts for %d parts", sdk.ErrStaleReceipt, len(receipts), o.spec.PartCount)
	}
	var all []byte
	for n, r := range receipts {
		if want := fmt.Sprintf("%d:%d", n, o.version[n]); string(r) != want || o.parts[n] == nil {
			return sdk.Object{}, fmt.Errorf("%w: part %d receipt %s, latest %s", sdk.ErrStaleReceipt, n, r, want)
		}
		all = append(all, o.parts[n]...)
	}
	if got := sha256.Sum256(all); !bytes.Equal(got[:], sum) {
		return sdk.Object{}, fmt.Errorf("%w: fake object", sdk.ErrDigestMismatch)
	}
	delete(f.unfinished, string(handle))
	f.objects[o.key] = all
	f.commits++
	return sdk.Object{Key: o.key, Size: int64(len(all)), SHA256: sum, Location: "fake://" + o.key}, nil
}

func (f *fakeBackend) AbortObject(ctx context.Context, key string, handle []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if handle != nil {
		delete(f.unfinished, string(handle))
		return nil
	}
	for h, o := range f.unfinished {
		if o.key == key {
			delete(f.unfinished, h)
		}
	}
	return nil
}

// loseUnfinished drops every unfinished object, as a backend that lost them would.
func (f *fakeBackend) loseUnfinished() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.unfinished)
}

// unfinishedKeys lists the keys of unfinished objects.
func (f *fakeBackend) unfinishedKeys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	for h := range f.unfinished {
		keys = append(keys, h[:strings.IndexByte(h, '#')])
	}
	return keys
}

// delivered returns how many parts of the unfinished object of key the fake holds.
func (f *fakeBackend) heldParts(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.unfinished {
		if o.key == key {
			return len(o.parts)
		}
	}
	return -1
}
