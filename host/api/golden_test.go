package api

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host/auth"
	"github.com/chunked-uploader/chunked-uploader/host/sqlite"
	"github.com/chunked-uploader/chunked-uploader/host/staging"
	"github.com/chunked-uploader/chunked-uploader/host/tus"
	"github.com/chunked-uploader/chunked-uploader/host/upload"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// The golden files pin every JSON body the API answers with: a change of one is a change of
// the public API (docs/api.md) and of what the clients decode (sdk/client checks that it
// decodes each of them without losing a field). Regenerate with
//
//	go test ./api -run Golden -update
//
// and review the diff.
var update = flag.Bool("update", false, "rewrite testdata/golden from the handlers' answers")

const goldenDir = "testdata/golden"

const tokenSecret = "0123456789abcdef0123456789abcdef"

// partSink is a part-wise backend that verifies and drops what it gets.
type partSink struct {
	discard
	mu    sync.Mutex
	specs map[string]sdk.ObjectSpec
}

func (*partSink) Parts() *sdk.PartLimits { return &sdk.PartLimits{} }

func (b *partSink) BeginObject(_ context.Context, key string, spec sdk.ObjectSpec) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.specs[key] = spec
	return []byte(key), nil
}

func (*partSink) PutPart(_ context.Context, _ []byte, p sdk.PartInfo, r io.Reader) ([]byte, error) {
	sum, err := sdk.CopyExact(io.Discard, r, p.Size)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(sum, p.SHA256) {
		return nil, fmt.Errorf("%w: part %d", sdk.ErrDigestMismatch, p.Number)
	}
	return []byte(fmt.Sprint(p.Number)), nil
}

func (b *partSink) CommitObject(_ context.Context, handle []byte, _ [][]byte, sum []byte) (sdk.Object, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := string(handle)
	return sdk.Object{Key: key, Size: b.specs[key].Size, SHA256: sum, Location: "discard://" + key}, nil
}

func (*partSink) AbortObject(context.Context, string, []byte) error { return nil }

// goldenEnv is a server on a real SQLite file and staging directory, with its parts at hand.
type goldenEnv struct {
	ts     *httptest.Server
	db     *sqlite.DB
	svc    *upload.Service
	tokens *auth.Tokens
	ids    []string // file ids seen, replaced by <file_id> in the golden files
}

func newGoldenEnv(t *testing.T, backend upload.Backend, nodeID string, opts ...Option) *goldenEnv {
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
	tokens := auth.NewTokens(tokenSecret)
	svc := upload.New(db, stage, backend, tokens, upload.Options{
		ChunkSize: chunk, TTL: time.Hour, MaxUpload: 100 * chunk, MaxParts: 50, CompleteWait: 5 * time.Second, MaxDeliveries: 1,
		NodeID: nodeID,
	})
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := tus.New(svc, tus.Options{Secret: tokenSecret, MaxSize: 100 * chunk, APIKey: auth.NewAPIKey(apiKey)})
	opts = append([]Option{WithTus(h)}, opts...)
	ts := httptest.NewServer(New(svc, auth.NewAPIKey(apiKey), tokens, hclog.NewNullLogger(), opts...))
	t.Cleanup(func() { ts.Close(); svc.Close(); db.Close() })
	return &goldenEnv{ts: ts, db: db, svc: svc, tokens: tokens}
}

// call sends c and returns the status and the raw body.
func (e *goldenEnv) call(t *testing.T, c call) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(c.method, e.ts.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-Id", "golden-request")
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, body %q", c.method, c.path, ct, raw)
	}
	return resp.StatusCode, raw
}

// init starts an upload and returns its id and part tokens.
func (e *goldenEnv) init(t *testing.T, body string) (string, []string, []byte) {
	t.Helper()
	status, raw := e.call(t, call{"POST", "/upload/init", key(), body})
	if status != 200 {
		t.Fatalf("init: %d %s", status, raw)
	}
	var m struct {
		FileID string `json:"file_id"`
		Parts  []struct {
			Token string `json:"token"`
		} `json:"parts"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	e.ids = append(e.ids, m.FileID)
	var toks []string
	for _, p := range m.Parts {
		toks = append(toks, p.Token)
	}
	return m.FileID, toks, raw
}

func (e *goldenEnv) put(t *testing.T, id string, n int, token string, body string) []byte {
	t.Helper()
	status, raw := e.call(t, call{"PUT", fmt.Sprintf("/upload/%s/part/%d", id, n), map[string]string{"Authorization": "Bearer " + token}, body})
	if status != 200 {
		t.Fatalf("part %d: %d %s", n, status, raw)
	}
	return raw
}

// waitDelivered polls the status of id until n parts are delivered (background delivery).
func (e *goldenEnv) waitDelivered(t *testing.T, id string, n int) {
	t.Helper()
	for range 1000 {
		v, err := e.svc.Status(context.Background(), id, true)
		if err != nil {
			t.Fatal(err)
		}
		if v.DeliveredParts == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("upload %s: %d parts never delivered", id, n)
}

var (
	tokenRE = regexp.MustCompile(`"token":"[^"]*"`)
	timeRE  = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"`)
	timeIn  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
)

// normalise replaces what changes from run to run (ids, tokens, times) with placeholders
// and indents the body, keeping its field order.
func (e *goldenEnv) normalise(t *testing.T, raw []byte) []byte {
	t.Helper()
	s := string(raw)
	for _, id := range e.ids {
		s = strings.ReplaceAll(s, id, "<file_id>")
	}
	s = tokenRE.ReplaceAllString(s, `"token":"<token>"`)
	s = timeRE.ReplaceAllString(s, `"<time>"`)
	s = timeIn.ReplaceAllString(s, `<time>`)
	var out bytes.Buffer
	if err := json.Indent(&out, []byte(strings.TrimSpace(s)), "", "  "); err != nil {
		t.Fatalf("not JSON: %v: %s", err, raw)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// golden compares the normalised body with testdata/golden/name.json (or writes it).
func (e *goldenEnv) golden(t *testing.T, name string, raw []byte) {
	t.Helper()
	got := e.normalise(t, raw)
	path := filepath.Join(goldenDir, name+".json")
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: the answer differs from %s:\n got: %s\nwant: %s", name, path, got, want)
	}
}

// check sends c, wants status and compares the body with the golden file name.
func (e *goldenEnv) check(t *testing.T, name string, c call, status int) {
	t.Helper()
	got, raw := e.call(t, c)
	if got != status {
		t.Fatalf("%s: %s %s answered %d, want %d: %s", name, c.method, c.path, got, status, raw)
	}
	e.golden(t, name, raw)
}

// TestGoldenUploads pins the bodies of an upload's life: init, part, status in each state,
// complete, cancel, and the error body.
func TestGoldenUploads(t *testing.T) {
	e := newGoldenEnv(t, discard{}, "")
	first := strings.Repeat("a", chunk)
	last := "0123456789"

	// A whole-delivery upload of two parts.
	id, toks, raw := e.init(t, `{"filename":"videos/2024/movie.mp4","total_size":1048586}`)
	e.golden(t, "init", raw)
	e.golden(t, "part", e.put(t, id, 1, toks[1], last))
	e.check(t, "status_uploading", call{"GET", "/upload/" + id + "/status", key(), ""}, 200)
	e.check(t, "status_tokens", call{"GET", "/upload/" + id + "/status?include_tokens=true", key(), ""}, 200)
	e.check(t, "status_without_parts", call{"GET", "/upload/" + id + "/status?include_parts=false", key(), ""}, 200)
	e.put(t, id, 0, toks[0], first)
	e.check(t, "complete", call{"POST", "/upload/" + id + "/complete", key(), ""}, 200)
	e.check(t, "status_complete", call{"GET", "/upload/" + id + "/status", key(), ""}, 200)
	e.check(t, "error_upload_complete", call{"DELETE", "/upload/" + id, key(), ""}, 409)

	// An empty file: no parts, and "parts": [] in its status (never left out).
	empty, _, raw := e.init(t, `{"filename":"empty.txt","total_size":0}`)
	e.golden(t, "init_empty", raw)
	e.check(t, "status_empty", call{"GET", "/upload/" + empty + "/status", key(), ""}, 200)
	e.check(t, "complete_empty", call{"POST", "/upload/" + empty + "/complete", key(), ""}, 200)
	e.check(t, "status_empty_complete", call{"GET", "/upload/" + empty + "/status", key(), ""}, 200)

	// A part that went back to pending says why.
	again, toks, _ := e.init(t, `{"filename":"again.bin","total_size":10}`)
	e.put(t, again, 0, toks[0], last)
	part, err := e.db.Part(context.Background(), again, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := e.db.MarkPartPending(context.Background(), again, 0, part.Version,
		"part 0 must be sent again: its staged copy was damaged on the server's disk", time.Now()); err != nil || !ok {
		t.Fatalf("mark part pending: %v %v", ok, err)
	}
	e.check(t, "status_part_message", call{"GET", "/upload/" + again + "/status", key(), ""}, 200)

	// Expired, and cancelled.
	if ok, err := e.db.MarkExpired(context.Background(), again, time.Now(), nil); err != nil || !ok {
		t.Fatalf("mark expired: %v %v", ok, err)
	}
	e.check(t, "status_expired", call{"GET", "/upload/" + again + "/status", key(), ""}, 200)
	e.check(t, "error_upload_expired", call{"POST", "/upload/" + again + "/complete", key(), ""}, 410)
	e.check(t, "cancel", call{"DELETE", "/upload/" + again, key(), ""}, 200)
	e.check(t, "error_upload_not_found", call{"GET", "/upload/" + again + "/status", key(), ""}, 404)
	e.check(t, "error_missing_api_key", call{"POST", "/upload/init", nil, `{}`}, 401)

	// The tus endpoint's own refusals have the same body.
	e.check(t, "error_tus_version", call{"POST", "/files/", map[string]string{"Tus-Resumable": "0.2.0"}, ""}, 412)
}

// TestGoldenPartwise pins the delivery fields of a part-wise upload's status.
func TestGoldenPartwise(t *testing.T) {
	e := newGoldenEnv(t, &partSink{specs: map[string]sdk.ObjectSpec{}}, "")
	first := strings.Repeat("b", chunk)
	id, toks, _ := e.init(t, `{"filename":"parts.bin","total_size":1048586}`)
	e.put(t, id, 0, toks[0], first)
	e.waitDelivered(t, id, 1)
	e.check(t, "status_partwise", call{"GET", "/upload/" + id + "/status", key(), ""}, 200)
	e.check(t, "status_partwise_without_parts", call{"GET", "/upload/" + id + "/status?include_parts=false", key(), ""}, 200)
	e.put(t, id, 1, toks[1], "0123456789")
	e.waitDelivered(t, id, 2)
	e.check(t, "complete_partwise", call{"POST", "/upload/" + id + "/complete", key(), ""}, 200)
	e.check(t, "status_partwise_complete", call{"GET", "/upload/" + id + "/status", key(), ""}, 200)
}

// TestGoldenHealth pins /health: healthy, degraded, and on a node while draining.
func TestGoldenHealth(t *testing.T) {
	e := newGoldenEnv(t, discard{}, "")
	e.check(t, "health", call{"GET", "/health", nil, ""}, 200)

	down := newGoldenEnv(t, discard{healthErr: sdk.ErrUnavailable}, "")
	down.check(t, "health_degraded", call{"GET", "/health", nil, ""}, 503)

	n := newGoldenEnv(t, discard{}, "", WithNode("node-b"))
	n.check(t, "health_node", call{"GET", "/health", nil, ""}, 200)
}

// TestGoldenWrongNode pins the 421 body, which names the nodes.
func TestGoldenWrongNode(t *testing.T) {
	a := newGoldenEnv(t, discard{}, "node-a", WithNode("node-a"))
	id, _, _ := a.init(t, `{"filename":"a.bin","total_size":10}`)
	b := newGoldenEnv(t, discard{}, "node-b", WithNode("node-b"))
	b.ids = a.ids
	b.check(t, "error_wrong_node", call{"GET", "/upload/" + id + "/status", key(), ""}, 421)
}
