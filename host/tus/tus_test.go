package tus_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host/api"
	"github.com/chunked-uploader/chunked-uploader/host/auth"
	"github.com/chunked-uploader/chunked-uploader/host/sqlite"
	"github.com/chunked-uploader/chunked-uploader/host/staging"
	"github.com/chunked-uploader/chunked-uploader/host/tus"
	"github.com/chunked-uploader/chunked-uploader/host/upload"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

const (
	apiKey = "tus-test-api-key-0123456789"
	chunk  = 1 << 20
)

// sums is a whole-only backend that keeps the SHA-256 of each object it was given.
type sums struct {
	upload.WholeOnly
	mu  sync.Mutex
	got map[string]string
}

func (*sums) Name() string                 { return "sums" }
func (*sums) Health(context.Context) error { return nil }
func (b *sums) PutChecked(_ context.Context, key string, r io.Reader, size int64, _ []byte) (sdk.Object, error) {
	sum, err := sdk.CopyExact(io.Discard, r, size)
	b.mu.Lock()
	b.got[key] = hex.EncodeToString(sum)
	b.mu.Unlock()
	return sdk.Object{Key: key, Size: size, SHA256: sum, Location: "sums://" + key}, err
}

func (b *sums) only(t *testing.T) string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.got) != 1 {
		t.Fatalf("backend holds %d objects, want 1", len(b.got))
	}
	for _, s := range b.got {
		return s
	}
	return ""
}

func newServer(t *testing.T) (*httptest.Server, *sums) {
	t.Helper()
	ts, backend, _ := newServerSvc(t)
	return ts, backend
}

// newServerSvc is newServer that also returns the upload service.
func newServerSvc(t *testing.T) (*httptest.Server, *sums, *upload.Service) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	stage, err := staging.New(filepath.Join(dir, "staging"))
	if err != nil {
		t.Fatal(err)
	}
	secret := "0123456789abcdef0123456789abcdef"
	tokens := auth.NewTokens(secret)
	backend := &sums{got: map[string]string{}}
	svc := upload.New(db, stage, backend, tokens, upload.Options{
		ChunkSize: chunk, TTL: time.Hour, MaxUpload: 100 * chunk, MaxParts: 100, CompleteWait: 10 * time.Second, MaxDeliveries: 1,
	})
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	key := auth.NewAPIKey(apiKey)
	h := tus.New(svc, tus.Options{Secret: secret, MaxSize: 100 * chunk, APIKey: key})
	ts := httptest.NewServer(api.New(svc, key, tokens, hclog.NewNullLogger(), api.WithTus(h)))
	t.Cleanup(func() { ts.Close(); svc.Close(); db.Close() })
	return ts, backend, svc
}

func do(t *testing.T, method, url string, body io.Reader, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		t.Logf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return resp
}

func create(t *testing.T, ts *httptest.Server, size int) string {
	t.Helper()
	resp := do(t, "POST", ts.URL+tus.Path, nil, map[string]string{
		"X-API-Key": apiKey, "Upload-Length": strconv.Itoa(size),
		"Upload-Metadata": "filename " + base64.StdEncoding.EncodeToString([]byte("dir/f.bin")),
	})
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	return ts.URL + resp.Header.Get("Location")
}

func patch(t *testing.T, url string, off int, body []byte, hdr map[string]string) *http.Response {
	t.Helper()
	h := map[string]string{"Content-Type": "application/offset+octet-stream", "Upload-Offset": strconv.Itoa(off)}
	for k, v := range hdr {
		h[k] = v
	}
	return do(t, "PATCH", url, bytes.NewReader(body), h)
}

func headOffset(t *testing.T, url string) int {
	t.Helper()
	resp := do(t, "HEAD", url, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
	n, err := strconv.Atoi(resp.Header.Get("Upload-Offset"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func random(t *testing.T, n int) ([]byte, string) {
	b := make([]byte, n)
	rand.Read(b)
	s := sha256.Sum256(b)
	return b, hex.EncodeToString(s[:])
}

func TestProtocolEdges(t *testing.T) {
	ts, backend := newServer(t)
	data, sum := random(t, 2*chunk+123)
	url := create(t, ts, len(data))

	if r := do(t, "HEAD", url, nil, map[string]string{"Tus-Resumable": ""}); r.StatusCode != 412 || r.Header.Get("Tus-Version") != "1.0.0" {
		t.Fatalf("missing Tus-Resumable: %d, Tus-Version %q", r.StatusCode, r.Header.Get("Tus-Version"))
	}
	if r := do(t, "HEAD", url, nil, map[string]string{"Tus-Resumable": "0.2.2"}); r.StatusCode != 412 {
		t.Fatalf("wrong Tus-Resumable: %d", r.StatusCode)
	}
	// A URL whose signature is not the server's is not found; so is an id with another's mac.
	if r := do(t, "HEAD", url[:len(url)-2]+"xx", nil, nil); r.StatusCode != 404 {
		t.Fatalf("forged URL: %d", r.StatusCode)
	}
	other := create(t, ts, 10)
	forged := url[:len(url)-len(filepath.Base(url))] + filepath.Base(other)[:36] + filepath.Base(url)[36:]
	if r := do(t, "HEAD", forged, nil, nil); r.StatusCode != 404 {
		t.Fatalf("another upload's id with this one's signature: %d", r.StatusCode)
	}
	if r := patch(t, url, 5, data[:10], nil); r.StatusCode != 409 || r.Header.Get("Upload-Offset") != "0" {
		t.Fatalf("offset mismatch: %d, Upload-Offset %q", r.StatusCode, r.Header.Get("Upload-Offset"))
	}
	if r := patch(t, url, 0, data[:10], map[string]string{"Content-Type": "text/plain"}); r.StatusCode != 415 {
		t.Fatalf("wrong content type: %d", r.StatusCode)
	}
	if r := patch(t, url, 0, make([]byte, len(data)+1), nil); r.StatusCode != 413 {
		t.Fatalf("body past Upload-Length: %d", r.StatusCode)
	}
	if r := patch(t, url, 0, data[:10], map[string]string{"Upload-Checksum": "md5 " + base64.StdEncoding.EncodeToString(make([]byte, 16))}); r.StatusCode != 400 {
		t.Fatalf("unsupported checksum algorithm: %d", r.StatusCode)
	}
	wrong := sha256.Sum256([]byte("x"))
	if r := patch(t, url, 0, data[:chunk], map[string]string{"Upload-Checksum": "sha256 " + base64.StdEncoding.EncodeToString(wrong[:])}); r.StatusCode != 460 {
		t.Fatalf("checksum mismatch: %d", r.StatusCode)
	}
	if got := headOffset(t, url); got != 0 {
		t.Fatalf("after refused bodies HEAD says %d, want 0", got)
	}
	// A checksummed PATCH may carry at most one chunk.
	if r := patch(t, url, 0, data[:chunk+1], map[string]string{"Upload-Checksum": "sha256 " + base64.StdEncoding.EncodeToString(wrong[:])}); r.StatusCode != 413 {
		t.Fatalf("checksummed PATCH over a chunk: %d", r.StatusCode)
	}
	if r := patch(t, url, 0, data[:700<<10], nil); r.StatusCode != 204 {
		t.Fatalf("PATCH: %d", r.StatusCode)
	}
	// A checksummed PATCH across a part boundary: the end of part 0, the start of part 1.
	first := data[:chunk+7]
	s := sha256.Sum256(first[700<<10:])
	if r := patch(t, url, 700<<10, first[700<<10:], map[string]string{"Upload-Checksum": "sha256 " + base64.StdEncoding.EncodeToString(s[:])}); r.StatusCode != 204 || r.Header.Get("Upload-Offset") != strconv.Itoa(len(first)) {
		t.Fatalf("checksummed PATCH: %d, Upload-Offset %q", r.StatusCode, r.Header.Get("Upload-Offset"))
	}
	// A chunked body (no Content-Length) that goes past Upload-Length is refused at the limit.
	rest := append(append([]byte{}, data[len(first):]...), 'X')
	req, _ := http.NewRequest("PATCH", url, io.MultiReader(bytes.NewReader(rest)))
	req.ContentLength = -1
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.Itoa(len(first)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked body past Upload-Length: %d", resp.StatusCode)
	}
	// The bytes up to the length were kept; an empty PATCH at the end completes the upload.
	if got := headOffset(t, url); got != len(data) {
		t.Fatalf("HEAD %d, want %d", got, len(data))
	}
	if r := patch(t, url, len(data), nil, nil); r.StatusCode != 204 {
		t.Fatalf("completing PATCH: %d", r.StatusCode)
	}
	if got := backend.only(t); got != sum {
		t.Fatalf("delivered sha256 %s, want %s", got, sum)
	}
	if r := patch(t, url, 0, data[:1], nil); r.StatusCode != 409 {
		t.Fatalf("PATCH of a complete upload at a wrong offset: %d", r.StatusCode)
	}
	if r := do(t, "DELETE", other, nil, nil); r.StatusCode != 204 {
		t.Fatalf("DELETE: %d", r.StatusCode)
	}
	if r := do(t, "HEAD", other, nil, nil); r.StatusCode != 404 {
		t.Fatalf("HEAD after DELETE: %d", r.StatusCode)
	}
}

// A newer PATCH of an upload takes over from one in flight: the older one is cut, what it
// had received is kept, and the newer one gets the offset that results.
func TestConcurrentPatchTakesOver(t *testing.T) {
	ts, backend := newServer(t)
	data, sum := random(t, 3*chunk)
	url := create(t, ts, len(data))

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("PATCH", url, pr)
	req.ContentLength = int64(len(data))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", "0")
	firstDone := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			firstDone <- -1
			return
		}
		resp.Body.Close()
		firstDone <- resp.StatusCode
	}()
	// One whole part and 300 KiB more; the body stays open after this. Once HEAD shows the
	// whole part, the older PATCH is certainly the one in flight (without this wait the
	// newer could reach the server first and be the one taken over).
	sent := chunk + 300<<10
	if _, err := pw.Write(data[:sent]); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); headOffset(t, url) < chunk; {
		if time.Now().After(deadline) {
			t.Fatal("the older PATCH's first part never showed in HEAD")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The newer PATCH (empty, at offset 0) takes over; the offset is then whatever the older
	// one had received, which 409 answers.
	r := patch(t, url, 0, nil, nil)
	status := <-firstDone
	if status != 409 {
		t.Fatalf("the PATCH that was taken over answered %d, want 409 part_superseded", status)
	}
	pw.Close()
	if r.StatusCode != 409 {
		t.Fatalf("newer PATCH at offset 0: %d, want 409 with the offset", r.StatusCode)
	}
	off, err := strconv.Atoi(r.Header.Get("Upload-Offset"))
	if err != nil || off < chunk || off > sent {
		t.Fatalf("newer PATCH says offset %q, want %d..%d", r.Header.Get("Upload-Offset"), chunk, sent)
	}
	if got := headOffset(t, url); got != off {
		t.Fatalf("HEAD %d, newer PATCH said %d", got, off)
	}
	if r := patch(t, url, off, data[off:], nil); r.StatusCode != 204 {
		t.Fatalf("resuming PATCH: %d", r.StatusCode)
	}
	if got := backend.only(t); got != sum {
		t.Fatalf("delivered sha256 %s, want %s", got, sum)
	}
}

// waitDelivered waits until the backend holds one object and returns its SHA-256.
func waitDelivered(t *testing.T, backend *sums) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		backend.mu.Lock()
		n := len(backend.got)
		backend.mu.Unlock()
		if n > 0 {
			return backend.only(t)
		}
		if time.Now().After(deadline) {
			t.Fatal("the upload was not delivered within 20 s")
		}
	}
}

// A client that goes away right after its last byte (it closes its side of the
// connection): the upload is completed all the same (tus clients that resume see Upload-Offset = Upload-Length and send nothing more).
func TestClientGoneAfterLastByte(t *testing.T) {
	ts, backend := newServer(t)
	data, sum := random(t, 2*chunk+1000)
	url := create(t, ts, len(data))
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimPrefix(url, ts.URL)
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"+
		"Content-Type: application/offset+octet-stream\r\nContent-Length: %d\r\n\r\n", path, len(data))
	if _, err := conn.Write(data); err != nil {
		t.Fatal(err)
	}
	// Gone without reading the answer: once the server has read the body it sees the end of
	// the connection, which cancels the request's context.
	conn.(*net.TCPConn).CloseWrite()
	defer conn.Close()
	if got := waitDelivered(t, backend); got != sum {
		t.Fatalf("delivered sha256 %s, want %s", got, sum)
	}
}

// A chunked body that goes past Upload-Length is read up to the length and refused with
// 413; the upload, which then has all its bytes, is completed without another request.
func TestBodyPastLengthCompletes(t *testing.T) {
	ts, backend := newServer(t)
	data, sum := random(t, chunk+500)
	url := create(t, ts, len(data))
	req, err := http.NewRequest("PATCH", url, io.MultiReader(bytes.NewReader(data), bytes.NewReader(make([]byte, 4096))))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("PATCH past Upload-Length: %d, want 413", resp.StatusCode)
	}
	if got := waitDelivered(t, backend); got != sum {
		t.Fatalf("delivered sha256 %s, want %s", got, sum)
	}
	if off := headOffset(t, url); off != len(data) {
		t.Fatalf("HEAD after completion: offset %d, want %d", off, len(data))
	}
}

// A HEAD that finds every byte of an upload that was not completed (here the last byte is
// in the partial file without a request having completed it, as after a crash) completes
// it: tus clients that resume take Upload-Offset = Upload-Length as success.
func TestHeadCompletesAFullUpload(t *testing.T) {
	ts, backend, svc := newServerSvc(t)
	data, sum := random(t, 1000)
	url := create(t, ts, len(data))
	if resp := patch(t, url, 0, data[:999], nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PATCH of 999 bytes: %d", resp.StatusCode)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(url, ts.URL+tus.Path), ".")
	f, err := os.OpenFile(filepath.Join(svc.StagingDir(id), "tus-000000.partial"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data[999:]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if off := headOffset(t, url); off != len(data) {
		t.Fatalf("HEAD: offset %d, want %d", off, len(data))
	}
	if got := waitDelivered(t, backend); got != sum {
		t.Fatalf("delivered sha256 %s, want %s", got, sum)
	}
}
