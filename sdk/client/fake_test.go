package client

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer simulates the API of docs/api.md in memory, with hooks to inject failures.
type fakeServer struct {
	srv   *httptest.Server
	chunk int64

	mu       sync.Mutex
	uploads  map[string]*fakeUpload
	nextID   int
	requests []string // "METHOD /path?query", in arrival order
	inflight int      // part requests being served
	maxIn    int      // most part requests served at once

	// partHook, if set, runs before a part is handled; it returns true if it answered.
	partHook func(w http.ResponseWriter, r *http.Request, n int) bool
	// completeHook, if set, runs before complete is handled; it returns true if it answered.
	completeHook func(w http.ResponseWriter, r *http.Request) bool
	// polls is how many status reads a delivery takes: 0 answers complete with 200, otherwise
	// 202 and the status says finalizing that many times.
	polls int
	// failDelivery, if set, makes a delivery that went through polling fail with this message.
	failDelivery string
	// hideTokens makes status ignore include_tokens, as for an expired upload.
	hideTokens bool
	// initBody is the body of the last init request.
	initBody []byte
}

type fakeUpload struct {
	id, name string
	size     int64
	parts    [][]byte
	status   string
	polls    int
}

func newFakeServer(t testing.TB, chunk int64) *fakeServer {
	f := &fakeServer{chunk: chunk, uploads: map[string]*fakeUpload{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a Client for f with fast retries, polling and a given concurrency.
func (f *fakeServer) client(t testing.TB, opts ...Option) *Client {
	t.Helper()
	base := []Option{WithRetry(RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}),
		WithPollInterval(time.Millisecond)}
	c, err := New(f.srv.URL, "test-key", append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func token(id string, n int) string { return fmt.Sprintf("tok-%s-%d", id, n) }

func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", "req-1")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": msg, "code": code, "status": status})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.URL.Path == "/health" {
		reply(w, 200, map[string]any{"status": "ok", "storage": map[string]any{"backend_type": "fake", "status": "healthy"}})
		return
	}
	if len(seg) == 4 && r.Method == http.MethodPut && seg[2] == "part" {
		f.part(w, r, seg[1], seg[3])
		return
	}
	if r.Header.Get("X-API-Key") != "test-key" {
		fail(w, 401, "invalid_api_key", "invalid API key")
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/upload/init":
		f.init(w, r)
	case len(seg) == 3 && r.Method == http.MethodGet && seg[2] == "status":
		f.status(w, r, seg[1])
	case len(seg) == 3 && r.Method == http.MethodPost && seg[2] == "complete":
		if f.completeHook != nil && f.completeHook(w, r) {
			return
		}
		f.complete(w, seg[1])
	case len(seg) == 2 && r.Method == http.MethodDelete:
		f.mu.Lock()
		delete(f.uploads, seg[1])
		f.mu.Unlock()
		reply(w, 200, map[string]any{"file_id": seg[1], "status": "cancelled", "message": "gone"})
	default:
		fail(w, 404, "route_not_found", "no such route")
	}
}

func (f *fakeServer) init(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Filename  string `json:"filename"`
		TotalSize int64  `json:"total_size"`
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.initBody = body
	f.mu.Unlock()
	if err := json.Unmarshal(body, &in); err != nil {
		fail(w, 400, "invalid_json", err.Error())
		return
	}
	f.mu.Lock()
	f.nextID++
	u := &fakeUpload{id: fmt.Sprintf("up%d", f.nextID), name: in.Filename, size: in.TotalSize, status: StatusPending,
		parts: make([][]byte, (in.TotalSize+f.chunk-1)/f.chunk)}
	f.uploads[u.id] = u
	f.mu.Unlock()
	parts := []PartToken{}
	for n := range u.parts {
		parts = append(parts, PartToken{Part: n, Token: token(u.id, n), Status: PartPending})
	}
	reply(w, 200, InitResponse{FileID: u.id, TotalParts: len(u.parts), ChunkSize: f.chunk, Parts: parts})
}

func (f *fakeServer) upload(w http.ResponseWriter, id string) *fakeUpload {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.uploads[id]
	if u == nil {
		fail(w, 404, "upload_not_found", "no such upload")
	}
	return u
}

func (f *fakeServer) part(w http.ResponseWriter, r *http.Request, id, num string) {
	n, _ := strconv.Atoi(num)
	f.mu.Lock()
	f.inflight, f.maxIn = f.inflight+1, max(f.maxIn, f.inflight+1)
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.inflight--; f.mu.Unlock() }()
	if f.partHook != nil && f.partHook(w, r, n) {
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+token(id, n) {
		fail(w, 403, "token_mismatch", "wrong token")
		return
	}
	u := f.upload(w, id)
	if u == nil {
		return
	}
	want := min(f.chunk, u.size-int64(n)*f.chunk)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if int64(len(body)) != want || r.ContentLength != want {
		fail(w, 400, "part_size_mismatch", fmt.Sprintf("part %d must be %d bytes, got %d", n, want, len(body)))
		return
	}
	sum := sha256.Sum256(body)
	if r.Header.Get("X-Checksum-SHA256") != hex.EncodeToString(sum[:]) {
		fail(w, 400, "checksum_mismatch", "checksum mismatch")
		return
	}
	f.mu.Lock()
	u.parts[n] = body
	f.mu.Unlock()
	reply(w, 200, PartResponse{UploadID: id, PartNumber: n, Status: PartUploaded, ChecksumSHA256: hex.EncodeToString(sum[:])})
}

func (f *fakeServer) status(w http.ResponseWriter, r *http.Request, id string) {
	u := f.upload(w, id)
	if u == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if u.status == StatusFinalizing {
		if u.polls--; u.polls <= 0 {
			u.status = StatusComplete
			if f.failDelivery != "" {
				u.status = StatusFailed
			}
		}
	}
	st := f.statusOf(u)
	if r.URL.Query().Get("include_parts") != "false" {
		for n, p := range u.parts {
			ps := PartStatus{Part: n, Status: PartUploaded}
			if p == nil {
				ps.Status = PartPending
				if r.URL.Query().Get("include_tokens") == "true" && !f.hideTokens {
					ps.Token = token(id, n)
				}
			}
			st.Parts = append(st.Parts, ps)
		}
	}
	reply(w, 200, st)
}

// statusOf is u's status without parts. f.mu is held.
func (f *fakeServer) statusOf(u *fakeUpload) Status {
	st := Status{FileID: u.id, Filename: u.name, TotalSize: u.size, ChunkSize: f.chunk,
		TotalParts: len(u.parts), Status: u.status, StorageBackend: "fake"}
	switch u.status {
	case StatusComplete:
		st.FinalPath, st.ChecksumSHA256, st.FinalizingProgressPercent = new("/final/"+u.name), new(f.sum(u)), 100
	case StatusFinalizing:
		st.FinalizingProgressPercent = 50
	case StatusFailed:
		st.FinalizationError = new(f.failDelivery)
	}
	return st
}

func (f *fakeServer) sum(u *fakeUpload) string {
	h := sha256.New()
	for _, p := range u.parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (f *fakeServer) complete(w http.ResponseWriter, id string) {
	u := f.upload(w, id)
	if u == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for n, p := range u.parts {
		if p == nil {
			fail(w, 400, "parts_missing", fmt.Sprintf("part %d missing", n))
			return
		}
	}
	code := 200
	if u.status != StatusComplete {
		u.status = StatusComplete
		if f.polls > 0 {
			u.status, u.polls, code = StatusFinalizing, f.polls, 202
		}
	}
	st := f.statusOf(u)
	reply(w, code, CompleteResponse{FileID: u.id, Filename: u.name, TotalSize: u.size, Status: st.Status,
		FinalPath: st.FinalPath, StorageBackend: "fake", ChecksumSHA256: st.ChecksumSHA256,
		FinalizingProgressPercent: st.FinalizingProgressPercent})
}

// data returns the bytes stored for upload id, all parts in order.
func (f *fakeServer) data(id string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b []byte
	for _, p := range f.uploads[id].parts {
		b = append(b, p...)
	}
	return b
}

// count returns how many requests started with prefix ("PUT /upload/up1/part/").
func (f *fakeServer) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}
