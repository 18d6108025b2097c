package upload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

func TestValidateFilename(t *testing.T) {
	tests := map[string]struct {
		in         string
		path, name string
		ok         bool
	}{
		"plain":           {"movie.mp4", "", "movie.mp4", true},
		"nested":          {"videos/2024/movie.mp4", "videos/2024", "movie.mp4", true},
		"unicode, spaces": {"vidéos/été 2024/mon film.mp4", "vidéos/été 2024", "mon film.mp4", true},
		"empty":           {"", "", "", false},
		"dotdot":          {"../x.bin", "", "", false},
		"inner dotdot":    {"a/../../x.bin", "", "", false},
		"dot":             {"a/./b.bin", "", "", false},
		"absolute":        {"/etc/passwd", "", "", false},
		"backslash":       {`a\b.bin`, "", "", false},
		"drive letter":    {`C:\x.bin`, "", "", false},
		"drive slash":     {"C:/x.bin", "", "", false},
		"nul":             {"x\x00.bin", "", "", false},
		"newline":         {"x\n.bin", "", "", false},
		"trailing slash":  {"a/b/", "", "", false},
		"double slash":    {"a//b.bin", "", "", false},
		"only dotdot":     {"..", "", "", false},
		"invalid utf8":    {"a\xffb.bin", "", "", false},
		"long name":       {strings.Repeat("n", 219) + ".bin", "", "", false},
		"long path":       {strings.Repeat("d/", 520) + "x", "", "", false},
		"encoded dots ok": {"%2e%2e/x.bin", "%2e%2e", "x.bin", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path, n, err := ValidateFilename(tc.in)
			if !tc.ok {
				if host.ErrorCode(err) != host.CodeInvalidFilename {
					t.Fatalf("accepted %q (err %v)", tc.in, err)
				}
				return
			}
			if err != nil || path != tc.path || n != tc.name {
				t.Fatalf("= %q, %q, %v; want %q, %q", path, n, err, tc.path, tc.name)
			}
		})
	}
}

func TestInitRefusals(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxUpload = 100 * testChunk; o.MaxParts = 50 })
	tests := map[string]struct {
		req  InitRequest
		code host.Code
	}{
		"negative size":  {InitRequest{Filename: "a", TotalSize: -1}, host.CodeInvalidSize},
		"too large":      {InitRequest{Filename: "a", TotalSize: 100*testChunk + 1}, host.CodeUploadTooLarge},
		"too many parts": {InitRequest{Filename: "a", TotalSize: 51 * testChunk}, host.CodeTooManyParts},
		"bad checksum":   {InitRequest{Filename: "a", TotalSize: 1, ChecksumSHA256: "xyz"}, host.CodeInvalidChecksum},
		"ftp webhook":    {InitRequest{Filename: "a", TotalSize: 1, WebhookURL: "ftp://x/y"}, host.CodeInvalidWebhookURL},
		"relative hook":  {InitRequest{Filename: "a", TotalSize: 1, WebhookURL: "/hook"}, host.CodeInvalidWebhookURL},
		"traversal":      {InitRequest{Filename: "../a", TotalSize: 1}, host.CodeInvalidFilename},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := e.svc.Init(context.Background(), tc.req)
			wantCode(t, err, tc.code)
		})
	}
	if ids, _ := e.db.ExpiredIDs(context.Background(), time.Now().Add(1000*time.Hour)); len(ids) != 0 {
		t.Fatalf("refused inits created uploads: %v", ids)
	}
}

func TestUploadAndDeliver(t *testing.T) {
	e := newEnv(t)
	content := data(3*testChunk+100, 1)
	c := e.init(t, "videos/2024/clip.bin", len(content))
	if c.Upload.TotalParts != 4 || len(c.Tokens) != 4 {
		t.Fatalf("parts = %d", c.Upload.TotalParts)
	}
	// Out of order, one part twice.
	for _, n := range []int{3, 1, 1, 0, 2} {
		st, err := e.put(t, c, content, n)
		if err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
		start := n * testChunk
		if want := hexSum(content[start:min(start+testChunk, len(content))]); st.SHA256 != want {
			t.Fatalf("part %d sha256 %s, want %s", n, st.SHA256, want)
		}
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil {
		t.Fatal(err)
	}
	key := "videos/2024/" + c.Upload.ID + "_clip.bin"
	if u.Status != host.StatusComplete || u.FinalPath != "fake://"+key || u.DeliveredSHA256 != hexSum(content) {
		t.Fatalf("after complete: %+v", u)
	}
	if got, _ := e.backend.object(key); !bytes.Equal(got, content) {
		t.Fatal("delivered bytes differ")
	}
	if ids, _ := e.stage.Uploads(); len(ids) != 0 {
		t.Fatalf("staging kept after delivery: %v", ids)
	}
	// Idempotent: complete again answers the same, without another delivery.
	again, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || again.FinalPath != u.FinalPath || e.backend.putCount() != 1 {
		t.Fatalf("second complete: %+v %v puts=%d", again, err, e.backend.putCount())
	}
	_, err = e.put(t, c, content, 0)
	wantCode(t, err, host.CodeUploadComplete)
	wantCode(t, e.svc.Cancel(context.Background(), c.Upload.ID), host.CodeUploadComplete)
}

func TestZeroByteUpload(t *testing.T) {
	e := newEnv(t)
	c := e.init(t, "empty.txt", 0)
	if c.Upload.TotalParts != 0 {
		t.Fatalf("parts = %d", c.Upload.TotalParts)
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if got, ok := e.backend.object("files/" + c.Upload.ID + "_empty.txt"); !ok || len(got) != 0 {
		t.Fatal("empty object not delivered")
	}
}

func TestPartRefusals(t *testing.T) {
	e := newEnv(t)
	content := data(2*testChunk+10, 2)
	c := e.init(t, "f.bin", len(content))
	other := e.init(t, "g.bin", len(content))
	claims0, _ := e.tokens.Verify(c.Tokens[0])
	claims1, _ := e.tokens.Verify(c.Tokens[1])
	otherClaims, _ := e.tokens.Verify(other.Tokens[0])
	id := c.Upload.ID
	tests := map[string]struct {
		req  PartRequest
		code host.Code
	}{
		"other upload's token": {PartRequest{UploadID: id, Part: 0, Claims: otherClaims}, host.CodeTokenMismatch},
		"other part's token":   {PartRequest{UploadID: id, Part: 0, Claims: claims1}, host.CodeTokenMismatch},
		"out of range":         {PartRequest{UploadID: id, Part: 3, Claims: claims0}, host.CodePartNotFound},
		"length short":         {PartRequest{UploadID: id, Part: 0, Claims: claims0, ContentLength: 10}, host.CodePartSizeMismatch},
		"length long":          {PartRequest{UploadID: id, Part: 0, Claims: claims0, ContentLength: testChunk + 1}, host.CodePartTooLarge},
		"body short":           {PartRequest{UploadID: id, Part: 0, Claims: claims0, ContentLength: -1, Body: bytes.NewReader(content[:10])}, host.CodePartSizeMismatch},
		"body long":            {PartRequest{UploadID: id, Part: 0, Claims: claims0, ContentLength: -1, Body: bytes.NewReader(content)}, host.CodePartTooLarge},
		"checksum mismatch":    {PartRequest{UploadID: id, Part: 0, Claims: claims0, ContentLength: -1, Body: bytes.NewReader(content[:testChunk]), SHA256: make([]byte, 32)}, host.CodeChecksumMismatch},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := e.svc.PutPart(context.Background(), tc.req)
			wantCode(t, err, tc.code)
		})
	}
	v, err := e.svc.Status(context.Background(), id, true)
	if err != nil {
		t.Fatal(err)
	}
	if v.Upload.UploadedParts != 0 || v.Parts[0].Status != host.PartPending {
		t.Fatalf("refused parts changed state: %+v", v.Parts)
	}
	if _, err := os.Stat(e.stage.PartPath(id, 0)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("refused part left a file")
	}
	_, err = e.svc.Complete(context.Background(), id)
	wantCode(t, err, host.CodePartsMissing)
	if !strings.Contains(err.Error(), "0, 1, 2") {
		t.Fatalf("parts_missing does not list the parts: %v", err)
	}
}

// A failed delivery leaves the upload failed with its parts; complete again succeeds.
func TestFailedDeliveryIsRetryable(t *testing.T) {
	e := newEnv(t)
	e.backend.fail = func(n int) error {
		if n == 1 {
			return fmt.Errorf("%w: disk on fire at /secret/path", sdk.ErrUnavailable)
		}
		return nil
	}
	content := data(2*testChunk, 3)
	c := e.init(t, "f.bin", len(content))
	e.putAll(t, c, content)
	_, err := e.svc.Complete(context.Background(), c.Upload.ID)
	wantCode(t, err, host.CodeBackendUnavailable)
	v, _ := e.svc.Status(context.Background(), c.Upload.ID, false)
	if v.Upload.Status != host.StatusFailed || v.Upload.FinalizationError == "" {
		t.Fatalf("after failure: %+v", v.Upload)
	}
	if strings.Contains(v.Upload.FinalizationError, "/secret/path") {
		t.Fatalf("finalization_error leaks backend details: %q", v.Upload.FinalizationError)
	}
	if _, err := os.Stat(e.stage.PartPath(c.Upload.ID, 1)); err != nil {
		t.Fatalf("staged part gone after a failed delivery: %v", err)
	}
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("retry: %+v %v", u, err)
	}
	if got, _ := e.backend.object(c.Upload.Key()); !bytes.Equal(got, content) {
		t.Fatal("retried delivery has the wrong bytes")
	}
}

// The checksum declared at init is checked before the backend may commit.
func TestInitChecksumMismatch(t *testing.T) {
	e := newEnv(t)
	content := data(testChunk+1, 4)
	c, err := e.svc.Init(context.Background(), InitRequest{Filename: "f.bin", TotalSize: int64(len(content)), ChecksumSHA256: hexSum([]byte("other"))})
	if err != nil {
		t.Fatal(err)
	}
	e.putAll(t, c, content)
	_, err = e.svc.Complete(context.Background(), c.Upload.ID)
	wantCode(t, err, host.CodeChecksumMismatch)
	if _, ok := e.backend.object(c.Upload.Key()); ok {
		t.Fatal("object visible despite checksum mismatch")
	}
}

// Ten concurrent completes deliver exactly once; parts and cancel are refused meanwhile.
func TestConcurrentCompletes(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CompleteWait = 50 * time.Millisecond })
	e.backend.gate = make(chan struct{})
	content := data(3*testChunk, 5)
	c := e.init(t, "f.bin", len(content))
	e.putAll(t, c, content)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := e.svc.Complete(context.Background(), c.Upload.ID)
			if err != nil || u.Status != host.StatusFinalizing {
				t.Errorf("complete while delivering: %+v %v", u, err)
			}
		}()
	}
	wg.Wait()
	_, err := e.put(t, c, content, 0)
	wantCode(t, err, host.CodeUploadFinalizing)
	wantCode(t, e.svc.Cancel(context.Background(), c.Upload.ID), host.CodeUploadFinalizing)
	v, _ := e.svc.Status(context.Background(), c.Upload.ID, false)
	if v.Upload.Status != host.StatusFinalizing || v.Upload.BytesDelivered != int64(len(content)) {
		t.Fatalf("status while delivering: %+v", v.Upload)
	}
	close(e.backend.gate)
	e.svc.opt.CompleteWait = 5 * time.Second
	u, err := e.svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("complete: %+v %v", u, err)
	}
	if n := e.backend.putCount(); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
}

// Concurrent sends of one part, with different bytes, leave one whole version whose
// checksum is the recorded one, and the delivered file has it.
func TestConcurrentPutsOfOnePart(t *testing.T) {
	e := newEnv(t)
	content := data(2*testChunk, 6)
	c := e.init(t, "f.bin", len(content))
	if _, err := e.put(t, c, content, 1); err != nil {
		t.Fatal(err)
	}
	versions := make([][]byte, 10)
	var wg sync.WaitGroup
	for i := range versions {
		versions[i] = data(testChunk, byte(100+i))
		if i%2 == 0 {
			versions[i] = content[:testChunk] // same bytes as the source
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			claims, _ := e.tokens.Verify(c.Tokens[0])
			if _, err := e.svc.PutPart(context.Background(), PartRequest{UploadID: c.Upload.ID, Part: 0, Claims: claims,
				Body: bytes.NewReader(versions[i]), ContentLength: testChunk}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	v, _ := e.svc.Status(context.Background(), c.Upload.ID, true)
	if v.Upload.UploadedParts != 2 {
		t.Fatalf("uploaded_parts = %d", v.Upload.UploadedParts)
	}
	onDisk, _ := os.ReadFile(e.stage.PartPath(c.Upload.ID, 0))
	if hexSum(onDisk) != v.Parts[0].SHA256 {
		t.Fatal("recorded checksum is not the staged part's")
	}
	if _, err := e.svc.Complete(context.Background(), c.Upload.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := e.backend.object(c.Upload.Key())
	match := false
	for _, ver := range versions {
		match = match || bytes.Equal(got, append(append([]byte{}, ver...), content[testChunk:]...))
	}
	if !match {
		t.Fatal("delivered file is not one of the sent versions")
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	content := data(2*testChunk, 7)
	c := e.init(t, "f.bin", len(content))
	if _, err := e.put(t, c, content, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Cancel(context.Background(), c.Upload.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Status(context.Background(), c.Upload.ID, false)
	wantCode(t, err, host.CodeUploadNotFound)
	_, err = e.put(t, c, content, 1)
	wantCode(t, err, host.CodeUploadNotFound)
	wantCode(t, e.svc.Cancel(context.Background(), c.Upload.ID), host.CodeUploadNotFound)
	if ids, _ := e.stage.Uploads(); len(ids) != 0 {
		t.Fatalf("staging left after cancel: %v", ids)
	}
}

func TestSweep(t *testing.T) {
	e := newEnv(t)
	content := data(2*testChunk, 8)
	old := e.init(t, "old.bin", len(content))
	if _, err := e.put(t, old, content, 0); err != nil {
		t.Fatal(err)
	}
	// A staging directory no upload owns (e.g. left by a crash during cancel).
	if s, err := e.stage.Write("orphan", 0, bytes.NewReader([]byte("x")), 1); err != nil || s.Commit() != nil {
		t.Fatal(err)
	}
	e.svc.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	_, err := e.put(t, old, content, 1)
	wantCode(t, err, host.CodeUploadExpired)
	_, err = e.svc.Complete(context.Background(), old.Upload.ID)
	wantCode(t, err, host.CodeUploadExpired)
	fresh := e.init(t, "fresh.bin", len(content))
	if _, err := e.put(t, fresh, content, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Expired: staged parts gone, the record says so, and every request says upload_expired.
	v, err := e.svc.Status(context.Background(), old.Upload.ID, true)
	if err != nil || v.Upload.Status != host.StatusExpired {
		t.Fatalf("status after sweep: %+v %v", v, err)
	}
	_, err = e.put(t, old, content, 1)
	wantCode(t, err, host.CodeUploadExpired)
	_, err = e.svc.Complete(context.Background(), old.Upload.ID)
	wantCode(t, err, host.CodeUploadExpired)
	ids, _ := e.stage.Uploads()
	if len(ids) != 1 || ids[0] != fresh.Upload.ID {
		t.Fatalf("staging after sweep: %v", ids)
	}
	// An expired upload can be cancelled (its record removed).
	if err := e.svc.Cancel(context.Background(), old.Upload.ID); err != nil {
		t.Fatalf("cancel expired: %v", err)
	}
	_, err = e.svc.Status(context.Background(), old.Upload.ID, false)
	wantCode(t, err, host.CodeUploadNotFound)
}

// Records of complete and expired uploads go after the retention; delivered files stay.
func TestRetention(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Retention = 3 * time.Hour })
	content := data(testChunk, 10)
	done := e.init(t, "done.bin", len(content))
	e.putAll(t, done, content)
	if _, err := e.svc.Complete(context.Background(), done.Upload.ID); err != nil {
		t.Fatal(err)
	}
	stale := e.init(t, "stale.bin", len(content))
	e.svc.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := e.svc.Sweep(context.Background()); err != nil { // stale expires now
		t.Fatal(err)
	}
	if v, err := e.svc.Status(context.Background(), done.Upload.ID, false); err != nil || v.Upload.Status != host.StatusComplete {
		t.Fatalf("complete record before its retention: %+v %v", v, err)
	}
	if v, err := e.svc.Status(context.Background(), stale.Upload.ID, false); err != nil || v.Upload.Status != host.StatusExpired {
		t.Fatalf("expired record before its retention: %+v %v", v, err)
	}
	e.svc.now = func() time.Time { return time.Now().Add(6 * time.Hour) }
	if err := e.svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{done.Upload.ID, stale.Upload.ID} {
		_, err := e.svc.Status(context.Background(), id, false)
		wantCode(t, err, host.CodeUploadNotFound)
	}
	if _, ok := e.backend.object(done.Upload.Key()); !ok {
		t.Fatal("retention removed a delivered file")
	}
}

// A delivery interrupted by a stop is resumed by the next Start.
func TestResumeAfterRestart(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CompleteWait = 10 * time.Millisecond })
	e.backend.gate = make(chan struct{})
	content := data(2*testChunk+3, 9)
	c := e.init(t, "f.bin", len(content))
	e.putAll(t, c, content)
	if u, err := e.svc.Complete(context.Background(), c.Upload.ID); err != nil || u.Status != host.StatusFinalizing {
		t.Fatalf("complete: %+v %v", u, err)
	}
	e.svc.Close() // stops the gated delivery: it stays finalizing
	v, _ := e.svc.Status(context.Background(), c.Upload.ID, false)
	if v.Upload.Status != host.StatusFinalizing {
		t.Fatalf("after stop: %s", v.Upload.Status)
	}
	fresh := newFake()
	svc := New(e.db, e.stage, fresh, e.tokens, e.svc.opt)
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	svc.opt.CompleteWait = 5 * time.Second
	u, err := svc.Complete(context.Background(), c.Upload.ID)
	if err != nil || u.Status != host.StatusComplete {
		t.Fatalf("after restart: %+v %v", u, err)
	}
	if got, _ := fresh.object(c.Upload.Key()); !bytes.Equal(got, content) {
		t.Fatal("resumed delivery has the wrong bytes")
	}
}
