package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/auth"
	"github.com/chunked-uploader/chunked-uploader/host/metrics"
	"github.com/chunked-uploader/chunked-uploader/host/sqlite"
	"github.com/chunked-uploader/chunked-uploader/host/staging"
	"github.com/chunked-uploader/chunked-uploader/host/upload"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

const (
	apiKey = "test-api-key-0123456789"
	chunk  = 1 << 20
)

// discard is a backend that verifies and drops what it gets.
type discard struct {
	upload.WholeOnly
	healthErr error
}

func (discard) Name() string                   { return "discard" }
func (d discard) Health(context.Context) error { return d.healthErr }
func (discard) PutChecked(_ context.Context, key string, r io.Reader, size int64, _ []byte) (sdk.Object, error) {
	sum, err := sdk.CopyExact(io.Discard, r, size)
	return sdk.Object{Key: key, Size: size, SHA256: sum, Location: "discard://" + key}, err
}

func newServer(t *testing.T, backend upload.Backend) *httptest.Server {
	t.Helper()
	return newServerWith(t, backend)
}

func newServerWith(t *testing.T, backend upload.Backend, opts ...Option) *httptest.Server {
	t.Helper()
	return newServerMetrics(t, backend, nil, opts...)
}

func newServerMetrics(t *testing.T, backend upload.Backend, m *metrics.Metrics, opts ...Option) *httptest.Server {
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
		Metrics: m,
	})
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(New(svc, auth.NewAPIKey(apiKey), tokens, hclog.NewNullLogger(), opts...))
	t.Cleanup(func() { ts.Close(); svc.Close(); db.Close() })
	return ts
}

type call struct {
	method, path string
	header       map[string]string
	body         string
}

func do(t *testing.T, ts *httptest.Server, c call) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(c.method, ts.URL+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: body is not JSON: %q", c.method, c.path, raw)
	}
	return resp.StatusCode, m, resp.Header
}

func key() map[string]string { return map[string]string{"X-API-Key": apiKey} }

func initUpload(t *testing.T, ts *httptest.Server, body string) map[string]any {
	t.Helper()
	status, m, _ := do(t, ts, call{"POST", "/upload/init", key(), body})
	if status != 200 {
		t.Fatalf("init: %d %v", status, m)
	}
	return m
}

func TestErrorCodes(t *testing.T) {
	ts := newServer(t, discard{})
	up := initUpload(t, ts, `{"filename":"a/b.bin","total_size":1048586}`)
	id := up["file_id"].(string)
	tok0 := up["parts"].([]any)[0].(map[string]any)["token"].(string)
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	tests := map[string]struct {
		c      call
		status int
		code   host.Code
	}{
		"unknown route":       {call{"GET", "/nope", nil, ""}, 404, host.CodeRouteNotFound},
		"wrong method":        {call{"PATCH", "/upload/" + id, nil, ""}, 405, host.CodeMethodNotAllowed},
		"get init":            {call{"GET", "/upload/init", nil, ""}, 405, host.CodeMethodNotAllowed},
		"post upload id":      {call{"POST", "/upload/" + id, key(), ""}, 405, host.CodeMethodNotAllowed},
		"missing key":         {call{"POST", "/upload/init", nil, `{}`}, 401, host.CodeMissingAPIKey},
		"wrong key":           {call{"GET", "/upload/" + id + "/status", map[string]string{"X-API-Key": "nope"}, ""}, 401, host.CodeInvalidAPIKey},
		"bad json":            {call{"POST", "/upload/init", key(), `{"filename":`}, 400, host.CodeInvalidJSON},
		"json array":          {call{"POST", "/upload/init", key(), `[1,2]`}, 400, host.CodeInvalidJSON},
		"trailing data":       {call{"POST", "/upload/init", key(), `{"filename":"a","total_size":1} {}`}, 400, host.CodeInvalidJSON},
		"filename number":     {call{"POST", "/upload/init", key(), `{"filename":5,"total_size":1}`}, 400, host.CodeInvalidRequest},
		"size string":         {call{"POST", "/upload/init", key(), `{"filename":"a","total_size":"10"}`}, 400, host.CodeInvalidRequest},
		"size fraction":       {call{"POST", "/upload/init", key(), `{"filename":"a","total_size":1.5}`}, 400, host.CodeInvalidRequest},
		"size huge":           {call{"POST", "/upload/init", key(), `{"filename":"a","total_size":1e30}`}, 400, host.CodeInvalidRequest},
		"size missing":        {call{"POST", "/upload/init", key(), `{"filename":"a"}`}, 400, host.CodeInvalidRequest},
		"filename missing":    {call{"POST", "/upload/init", key(), `{"total_size":1}`}, 400, host.CodeInvalidRequest},
		"webhook number":      {call{"POST", "/upload/init", key(), `{"filename":"a","total_size":1,"webhook_url":3}`}, 400, host.CodeInvalidRequest},
		"negative size":       {call{"POST", "/upload/init", key(), `{"filename":"a","total_size":-1}`}, 400, host.CodeInvalidSize},
		"traversal":           {call{"POST", "/upload/init", key(), `{"filename":"../../etc/x","total_size":1}`}, 400, host.CodeInvalidFilename},
		"too large":           {call{"POST", "/upload/init", key(), `{"filename":"a","total_size":104857601}`}, 413, host.CodeUploadTooLarge},
		"text body":           {call{"POST", "/upload/init", map[string]string{"X-API-Key": apiKey, "Content-Type": "text/plain"}, `{}`}, 415, host.CodeUnsupportedMedia},
		"huge body":           {call{"POST", "/upload/init", key(), `{"filename":"` + strings.Repeat("a", 70000) + `","total_size":1}`}, 413, host.CodeRequestTooLarge},
		"no token":            {call{"PUT", "/upload/" + id + "/part/0", nil, "x"}, 401, host.CodeMissingToken},
		"basic auth":          {call{"PUT", "/upload/" + id + "/part/0", map[string]string{"Authorization": "Basic eDp5"}, "x"}, 401, host.CodeMissingToken},
		"garbage token":       {call{"PUT", "/upload/" + id + "/part/0", bearer("a.b.c"), "x"}, 401, host.CodeInvalidToken},
		"other upload":        {call{"PUT", "/upload/other/part/0", bearer(tok0), "x"}, 403, host.CodeTokenMismatch},
		"other part":          {call{"PUT", "/upload/" + id + "/part/1", bearer(tok0), "x"}, 403, host.CodeTokenMismatch},
		"part not a number":   {call{"PUT", "/upload/" + id + "/part/abc", bearer(tok0), "x"}, 400, host.CodeInvalidPartNumber},
		"part negative":       {call{"PUT", "/upload/" + id + "/part/-1", bearer(tok0), "x"}, 400, host.CodeInvalidPartNumber},
		"part leading zero":   {call{"PUT", "/upload/" + id + "/part/00", bearer(tok0), "x"}, 400, host.CodeInvalidPartNumber},
		"short part":          {call{"PUT", "/upload/" + id + "/part/0", bearer(tok0), "xyz"}, 400, host.CodePartSizeMismatch},
		"bad digest header":   {call{"PUT", "/upload/" + id + "/part/0", map[string]string{"Authorization": "Bearer " + tok0, "X-Checksum-SHA256": "zz"}, "x"}, 400, host.CodeInvalidChecksum},
		"bad content-digest":  {call{"PUT", "/upload/" + id + "/part/0", map[string]string{"Authorization": "Bearer " + tok0, "Content-Digest": "sha-256=abc"}, "x"}, 400, host.CodeInvalidChecksum},
		"status unknown":      {call{"GET", "/upload/nope/status", key(), ""}, 404, host.CodeUploadNotFound},
		"include_parts=maybe": {call{"GET", "/upload/" + id + "/status?include_parts=maybe", key(), ""}, 400, host.CodeInvalidRequest},
		"complete unknown":    {call{"POST", "/upload/nope/complete", key(), ""}, 404, host.CodeUploadNotFound},
		"complete missing":    {call{"POST", "/upload/" + id + "/complete", key(), ""}, 400, host.CodePartsMissing},
		"delete unknown":      {call{"DELETE", "/upload/nope", key(), ""}, 404, host.CodeUploadNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status, m, _ := do(t, ts, tc.c)
			if status != tc.status || m["code"] != string(tc.code) || m["status"] != float64(tc.status) {
				t.Fatalf("got %d %v, want %d %s", status, m, tc.status, tc.code)
			}
			if msg, _ := m["error"].(string); msg == "" {
				t.Fatalf("no error message: %v", m)
			}
		})
	}
	// Nothing above changed the upload.
	_, m, _ := do(t, ts, call{"GET", "/upload/" + id + "/status", key(), ""})
	if m["uploaded_parts"] != float64(0) || m["status"] != "pending" {
		t.Fatalf("refused requests changed the upload: %v", m)
	}
}

func TestRoundTripAndShapes(t *testing.T) {
	ts := newServer(t, discard{})
	body := bytes.Repeat([]byte{7}, chunk+10)
	up := initUpload(t, ts, `{"filename":"v/x.bin","total_size":1048586}`)
	id := up["file_id"].(string)
	if up["total_parts"] != float64(2) || up["chunk_size"] != float64(chunk) {
		t.Fatalf("init: %v", up)
	}
	if _, err := time.Parse(time.RFC3339, up["expires_at"].(string)); err != nil || !strings.HasSuffix(up["expires_at"].(string), "Z") {
		t.Fatalf("expires_at %v", up["expires_at"])
	}
	for n, p := range up["parts"].([]any) {
		tok := p.(map[string]any)["token"].(string)
		part := body[n*chunk : min((n+1)*chunk, len(body))]
		status, m, _ := do(t, ts, call{"PUT", "/upload/" + id + "/part/" + string(rune('0'+n)), map[string]string{"Authorization": "Bearer " + tok}, string(part)})
		if status != 200 || m["status"] != "uploaded" || m["part_number"] != float64(n) || m["upload_id"] != id || m["total_parts"] != float64(2) {
			t.Fatalf("part %d: %d %v", n, status, m)
		}
	}
	_, st, _ := do(t, ts, call{"GET", "/upload/" + id + "/status", key(), ""})
	for _, f := range []string{"file_id", "filename", "total_size", "chunk_size", "total_parts", "uploaded_parts", "progress_percent",
		"status", "phase", "finalizing_progress_percent", "final_path", "finalization_error", "storage_backend", "created_at", "expires_at", "parts"} {
		if _, ok := st[f]; !ok {
			t.Errorf("status lacks %q: %v", f, st)
		}
	}
	if st["progress_percent"] != float64(100) || st["filename"] != "x.bin" || st["path"] != "v" || st["phase"] != "uploading" {
		t.Fatalf("status: %v", st)
	}
	_, noParts, _ := do(t, ts, call{"GET", "/upload/" + id + "/status?include_parts=false", key(), ""})
	if _, ok := noParts["parts"]; ok {
		t.Fatalf("include_parts=false still lists parts")
	}
	status, c, _ := do(t, ts, call{"POST", "/upload/" + id + "/complete", key(), ""})
	if status != 200 || c["status"] != "complete" || c["final_path"] != "discard://v/"+id+"_x.bin" || c["checksum_sha256"] == nil {
		t.Fatalf("complete: %d %v", status, c)
	}
	status, c, _ = do(t, ts, call{"DELETE", "/upload/" + id, key(), ""})
	if status != 409 || c["code"] != string(host.CodeUploadComplete) {
		t.Fatalf("delete complete: %d %v", status, c)
	}
}

func TestHealth(t *testing.T) {
	status, m, _ := do(t, newServer(t, discard{}), call{"GET", "/health", nil, ""})
	if status != 200 || m["status"] != "ok" || m["storage"].(map[string]any)["status"] != "healthy" {
		t.Fatalf("healthy: %d %v", status, m)
	}
	down := discard{healthErr: sdk.ErrPluginExited}
	status, m, _ = do(t, newServer(t, down), call{"GET", "/health", nil, ""})
	if status != 503 || m["status"] != "degraded" || m["storage"].(map[string]any)["status"] != "unavailable" {
		t.Fatalf("unhealthy: %d %v", status, m)
	}
}

// A client that lost its tokens gets fresh ones for the pending parts, and they work.
func TestIncludeTokens(t *testing.T) {
	ts := newServer(t, discard{})
	up := initUpload(t, ts, `{"filename":"x.bin","total_size":2097152}`)
	id := up["file_id"].(string)
	tok0 := up["parts"].([]any)[0].(map[string]any)["token"].(string)
	status, m, _ := do(t, ts, call{"PUT", "/upload/" + id + "/part/0", map[string]string{"Authorization": "Bearer " + tok0}, strings.Repeat("a", chunk)})
	if status != 200 {
		t.Fatalf("part 0: %d %v", status, m)
	}
	_, plain, _ := do(t, ts, call{"GET", "/upload/" + id + "/status", key(), ""})
	if _, ok := plain["parts"].([]any)[1].(map[string]any)["token"]; ok {
		t.Fatal("tokens listed without include_tokens")
	}
	_, st, _ := do(t, ts, call{"GET", "/upload/" + id + "/status?include_tokens=true", key(), ""})
	parts := st["parts"].([]any)
	if _, ok := parts[0].(map[string]any)["token"]; ok {
		t.Fatal("a token for an uploaded part")
	}
	tok1, _ := parts[1].(map[string]any)["token"].(string)
	if tok1 == "" {
		t.Fatalf("no token for the pending part: %v", parts[1])
	}
	status, m, _ = do(t, ts, call{"PUT", "/upload/" + id + "/part/1", map[string]string{"Authorization": "Bearer " + tok1}, strings.Repeat("b", chunk)})
	if status != 200 || m["uploaded_parts"] != float64(2) {
		t.Fatalf("part 1 with the fresh token: %d %v", status, m)
	}
	status, m, _ = do(t, ts, call{"GET", "/upload/" + id + "/status?include_tokens=true&include_parts=false", key(), ""})
	if status != 400 || m["code"] != string(host.CodeInvalidRequest) {
		t.Fatalf("include_tokens without parts: %d %v", status, m)
	}
}
