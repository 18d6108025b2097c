package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/auth"
	"github.com/chunked-uploader/chunked-uploader/host/sqlite"
	"github.com/chunked-uploader/chunked-uploader/host/staging"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// fakeBackend is an in-memory Backend with fault injection. Like a real plugin it commits
// only whole, verified content.
type fakeBackend struct {
	mu      sync.Mutex
	objects map[string][]byte
	puts    int
	// fail, if set, is asked before each Put is committed (n counts Puts from 1).
	fail func(n int) error
	// gate, if set, holds every Put after it read the content until it is closed.
	gate chan struct{}
	// started receives a value when a Put begins, if set.
	started chan struct{}

	// Part-wise storage (fakeparts_test.go), off unless enableParts was called.
	partwise     *sdk.PartLimits
	declineParts bool
	// beginFail, if set, is BeginObject's error; beginTries counts the calls it failed.
	beginFail  error
	beginTries int
	unfinished map[string]*fakeObject
	begins     int
	partPuts   int
	commits    int
	// partFail, if set, is asked before each part is kept (count counts PutPart calls from 1).
	partFail func(n, count int) error
	// partHold, if set, holds every PutPart after it read the part until it is closed; a
	// PutPart whose ctx ends meanwhile returns at once and still keeps the part once
	// partHold is closed, as an S3 server finishes an UploadPart whose client went away.
	// partHeld, if set, receives a value when a PutPart is held.
	partHold chan struct{}
	partHeld chan struct{}
	// staged makes the fake read staged parts from their files (StagedReads), as a plugin
	// with staged reads does; stagedParts counts the parts it read so.
	staged      bool
	stagedParts int
	// partDir, if set, makes the fake offer part files (PartFiler): an unfinished object
	// has a file there, from which RecordPart reads the part back; recorded counts them.
	partDir  string
	recorded int
	// partFileWrongSize makes the part files one byte too long: not the object's file.
	partFileWrongSize bool
	// partFileReads, if set, holds every opening of a part file for reading until closed.
	partFileReads chan struct{}
	// noNewPartFiles makes PartFiles false while OffersPartFiles stays true, as a host
	// restarted with PLUGIN_PART_FILES=false sees it.
	noNewPartFiles bool
	// refuseRecord, if set, is RecordPart's error.
	refuseRecord error
	// partFileReadDelay slows every opening of a part file for reading: a slow digest.
	partFileReadDelay time.Duration
}

func newFake() *fakeBackend { return &fakeBackend{objects: map[string][]byte{}} }

func (f *fakeBackend) Name() string                     { return "fake" }
func (f *fakeBackend) Health(ctx context.Context) error { return nil }

func (f *fakeBackend) PutChecked(ctx context.Context, key string, r io.Reader, size int64, want []byte) (sdk.Object, error) {
	f.mu.Lock()
	f.puts++
	n := f.puts
	f.mu.Unlock()
	if f.started != nil {
		f.started <- struct{}{}
	}
	var buf bytes.Buffer
	sum, err := sdk.CopyExact(&buf, r, size)
	if err != nil {
		return sdk.Object{}, err
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return sdk.Object{}, ctx.Err()
		}
	}
	if f.fail != nil {
		if err := f.fail(n); err != nil {
			return sdk.Object{}, err
		}
	}
	if want != nil && !bytes.Equal(sum, want) {
		return sdk.Object{}, fmt.Errorf("%w: fake", sdk.ErrDigestMismatch)
	}
	f.mu.Lock()
	f.objects[key] = buf.Bytes()
	f.mu.Unlock()
	return sdk.Object{Key: key, Size: size, SHA256: sum, Location: "fake://" + key}, nil
}

func (f *fakeBackend) object(key string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objects[key]
	return b, ok
}

func (f *fakeBackend) putCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts
}

// env is a Service on a real SQLite file and a real staging directory.
type env struct {
	svc     *Service
	db      *sqlite.DB
	stage   *staging.Dir
	backend *fakeBackend
	tokens  *auth.Tokens
	dir     string
}

const testChunk = 1024

func newEnv(t *testing.T, mod ...func(*Options)) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "uploads.db"))
	if err != nil {
		t.Fatal(err)
	}
	stage, err := staging.New(filepath.Join(dir, "staging"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, stage: stage, backend: newFake(), tokens: auth.NewTokens("0123456789abcdef0123456789abcdef"), dir: dir}
	opt := Options{ChunkSize: testChunk, TTL: time.Hour, MaxUpload: 1 << 30, MaxParts: 1000,
		CompleteWait: 5 * time.Second, MaxDeliveries: 2, CleanupInterval: time.Hour,
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: testWriter{t}})}
	for _, m := range mod {
		m(&opt)
	}
	e.svc = New(db, stage, e.backend, e.tokens, opt)
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.svc.Close()
		db.Close()
	})
	return e
}

// testWriter sends log lines to the test's log (shown when it fails).
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// data returns deterministic content of n bytes, different for each seed.
func data(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func (e *env) init(t *testing.T, name string, size int) *Created {
	t.Helper()
	c, err := e.svc.Init(context.Background(), InitRequest{Filename: name, TotalSize: int64(size)})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return c
}

// put uploads part n of content with the part's own token.
func (e *env) put(t *testing.T, c *Created, content []byte, n int) (*Stored, error) {
	t.Helper()
	claims, err := e.tokens.Verify(c.Tokens[n])
	if err != nil {
		t.Fatal(err)
	}
	start := n * testChunk
	end := min(start+testChunk, len(content))
	return e.svc.PutPart(context.Background(), PartRequest{
		UploadID: c.Upload.ID, Part: n, Claims: claims,
		Body: bytes.NewReader(content[start:end]), ContentLength: int64(end - start),
	})
}

// completeAs completes c, checks that the committed object is want and returns the upload.
func (e *env) completeAs(t *testing.T, c *Created, want []byte) *host.Upload {
	t.Helper()
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if got, _ := e.backend.object(c.Upload.Key()); !bytes.Equal(got, want) {
		t.Fatal("the committed object differs from the parts sent")
	}
	return u
}

func (e *env) putAll(t *testing.T, c *Created, content []byte) {
	t.Helper()
	for n := range c.Tokens {
		if _, err := e.put(t, c, content, n); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
}

func wantCode(t *testing.T, err error, code host.Code) {
	t.Helper()
	if got := host.ErrorCode(err); err == nil || got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}
