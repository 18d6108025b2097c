package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/auth"
	"github.com/chunked-uploader/chunked-uploader/host/node"
	"github.com/chunked-uploader/chunked-uploader/host/sqlite"
	"github.com/chunked-uploader/chunked-uploader/host/staging"
	"github.com/chunked-uploader/chunked-uploader/host/upload"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// countingBackend is discard with a health state that can change and a count of checks.
type countingBackend struct {
	discard
	checks atomic.Int64
	down   atomic.Bool
	delay  time.Duration
}

func (b *countingBackend) Health(context.Context) error {
	b.checks.Add(1)
	time.Sleep(b.delay)
	if b.down.Load() {
		return sdk.ErrUnavailable
	}
	return nil
}

// newNode starts a server whose upload service writes idNode into new ids; opts configure
// the API server (WithNode ...).
func newNode(t *testing.T, backend upload.Backend, idNode string, opts ...Option) (*httptest.Server, *Server) {
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
	tokens := auth.NewTokens("0123456789abcdef0123456789abcdef")
	svc := upload.New(db, stage, backend, tokens, upload.Options{
		ChunkSize: chunk, TTL: time.Hour, MaxUpload: 100 * chunk, MaxParts: 50, CompleteWait: 5 * time.Second, MaxDeliveries: 1,
		NodeID: idNode,
	})
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := New(svc, auth.NewAPIKey(apiKey), tokens, hclog.NewNullLogger(), opts...)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); svc.Close(); db.Close() })
	return ts, srv
}

// uploadRoutes are the routes about one upload, with valid credentials for up.
func uploadRoutes(up map[string]any) []call {
	id := up["file_id"].(string)
	tok := up["parts"].([]any)[0].(map[string]any)["token"].(string)
	return []call{
		{"GET", "/upload/" + id + "/status", key(), ""},
		{"PUT", "/upload/" + id + "/part/0", map[string]string{"Authorization": "Bearer " + tok}, strings.Repeat("x", 10)},
		{"POST", "/upload/" + id + "/complete", key(), ""},
		{"DELETE", "/upload/" + id, key(), ""},
	}
}

// TestWrongNode: every route about an upload of node a, sent to node b, answers 421 with the
// owner's name, with or without credentials; node a serves them.
func TestWrongNode(t *testing.T) {
	a, _ := newNode(t, discard{}, "a", WithNode("a"))
	b, _ := newNode(t, discard{}, "b", WithNode("b"))
	up := initUpload(t, a, `{"filename":"x.bin","total_size":10}`)
	id := up["file_id"].(string)
	if owner, ok := node.Owner(id); !ok || owner != "a" {
		t.Fatalf("node a created %s, which names %q (%v)", id, owner, ok)
	}
	for _, c := range uploadRoutes(up) {
		for _, withAuth := range []bool{true, false} {
			cc := c
			if !withAuth {
				cc.header = nil
			}
			status, m, _ := do(t, b, cc)
			if status != 421 || m["code"] != string(host.CodeWrongNode) || m["status"] != float64(421) ||
				m["owner_node"] != "a" || m["node"] != "b" || !strings.Contains(m["error"].(string), "node a") {
				t.Errorf("%s %s on node b (auth %v): %d %v, want 421 wrong_node naming a", c.method, c.path, withAuth, status, m)
			}
		}
	}
	// The body of a misdirected part is not read: its connection is closed.
	put := uploadRoutes(up)[1]
	req, _ := http.NewRequest(put.method, b.URL+put.path, strings.NewReader(put.body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 421 || !resp.Close {
		t.Errorf("misdirected part: %d, close %v; want 421 and the connection closed", resp.StatusCode, resp.Close)
	}
	// The owner serves them all (in order: status, part, complete, then delete of a
	// delivered upload is refused).
	want := []int{200, 200, 200, 409}
	for i, c := range uploadRoutes(up) {
		if status, m, _ := do(t, a, c); status != want[i] {
			t.Errorf("%s %s on node a: %d %v, want %d", c.method, c.path, status, m, want[i])
		}
	}
	// An id of no node (made without NODE_ID) and an unknown id of this node: 404 as ever.
	for _, id := range []string{node.NewID(""), node.NewID("b")} {
		if status, m, _ := do(t, b, call{"GET", "/upload/" + id + "/status", key(), ""}); status != 404 || m["code"] != string(host.CodeUploadNotFound) {
			t.Errorf("status of unknown %s on node b: %d %v, want 404", id, status, m)
		}
	}
}

// TestWrongNodeButHere: an upload whose id names another node by chance (created before
// NODE_ID was set) is served by the node that has it.
func TestWrongNodeButHere(t *testing.T) {
	a, _ := newNode(t, discard{}, "b", WithNode("a")) // ids name b, the server is a
	up := initUpload(t, a, `{"filename":"x.bin","total_size":10}`)
	want := []int{200, 200, 200, 409}
	for i, c := range uploadRoutes(up) {
		if status, m, _ := do(t, a, c); status != want[i] {
			t.Errorf("%s %s: %d %v, want %d", c.method, c.path, status, m, want[i])
		}
	}
}

// TestSingleServerIgnoresNodes: without WithNode nothing changes, whatever an id names.
func TestSingleServerIgnoresNodes(t *testing.T) {
	ts, _ := newNode(t, discard{}, "")
	up := initUpload(t, ts, `{"filename":"x.bin","total_size":10}`)
	if _, ok := node.Owner(up["file_id"].(string)); ok {
		t.Logf("a random id names a node by chance: %s", up["file_id"])
	}
	status, m, _ := do(t, ts, call{"GET", "/upload/" + node.NewID("b") + "/status", key(), ""})
	if status != 404 || m["code"] != string(host.CodeUploadNotFound) {
		t.Errorf("unknown id naming node b on a single server: %d %v, want 404", status, m)
	}
	status, m, _ = do(t, ts, call{"GET", "/health", nil, ""})
	if _, ok := m["node"]; status != 200 || ok {
		t.Errorf("health of a single server: %d %v, want 200 without node", status, m)
	}
}

// TestDrain: a draining node refuses init with 503 node_draining and Retry-After, says
// "draining" on /health, and keeps serving its uploads.
func TestDrain(t *testing.T) {
	ts, srv := newNode(t, discard{}, "a", WithNode("a"))
	up := initUpload(t, ts, `{"filename":"x.bin","total_size":10}`)
	srv.Drain()
	status, m, h := do(t, ts, call{"POST", "/upload/init", key(), `{"filename":"y.bin","total_size":10}`})
	if status != 503 || m["code"] != string(host.CodeNodeDraining) || h.Get("Retry-After") == "" {
		t.Errorf("init while draining: %d %v (Retry-After %q), want 503 node_draining with Retry-After", status, m, h.Get("Retry-After"))
	}
	status, m, _ = do(t, ts, call{"GET", "/health", nil, ""})
	if status != 503 || m["status"] != "draining" || m["node"] != "a" {
		t.Errorf("health while draining: %d %v, want 503 draining", status, m)
	}
	want := []int{200, 200, 200}
	for i, c := range uploadRoutes(up)[:3] {
		if status, m, _ := do(t, ts, c); status != want[i] {
			t.Errorf("%s %s while draining: %d %v, want %d", c.method, c.path, status, m, want[i])
		}
	}
	// Without a node name too (DRAIN_TIMEOUT on a single server).
	single, ssrv := newNode(t, discard{}, "")
	ssrv.Drain()
	if status, m, _ := do(t, single, call{"POST", "/upload/init", key(), `{"filename":"y.bin","total_size":10}`}); status != 503 {
		t.Errorf("init on a draining single server: %d %v, want 503", status, m)
	}
}

// TestInitNeedsHealthyBackend: a node refuses init while its backend is down, so that a
// balancer moves on; a single server accepts it as it always did.
func TestInitNeedsHealthyBackend(t *testing.T) {
	be := &countingBackend{}
	be.down.Store(true)
	ts, _ := newNode(t, be, "a", WithNode("a"))
	status, m, h := do(t, ts, call{"POST", "/upload/init", key(), `{"filename":"y.bin","total_size":10}`})
	if status != 503 || m["code"] != string(host.CodeBackendUnavailable) || h.Get("Retry-After") == "" {
		t.Errorf("init on a node with its backend down: %d %v, want 503 backend_unavailable", status, m)
	}
	be.down.Store(false)
	initUpload(t, ts, `{"filename":"y.bin","total_size":10}`)

	sbe := &countingBackend{}
	sbe.down.Store(true)
	single, _ := newNode(t, sbe, "")
	initUpload(t, single, `{"filename":"y.bin","total_size":10}`)
	if n := sbe.checks.Load(); n != 0 {
		t.Errorf("init on a single server checked the backend %d times, want 0", n)
	}
}
