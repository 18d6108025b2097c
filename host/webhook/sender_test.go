package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/sqlite"
	"github.com/chunked-uploader/chunked-uploader/host/webhook"
)

var secret = []byte("webhook-secret-0123456789")

// loopbackAllowed is WEBHOOK_ALLOWED_HOSTS=127.0.0.1: the test receivers run there.
var loopbackAllowed = func() *webhook.Policy {
	p, err := webhook.NewPolicy([]string{"127.0.0.1"})
	if err != nil {
		panic(err)
	}
	return p
}()

// receiver is a real HTTP receiver that fails its first attempts, checks signatures and
// records what it got.
type receiver struct {
	mu       sync.Mutex
	failures int           // answer 500 this many times first
	delay    time.Duration // sleep before answering (first request only)
	got      []http.Header
	bodies   [][]byte
	badSig   int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	n := len(r.got)
	r.got = append(r.got, req.Header.Clone())
	r.bodies = append(r.bodies, body)
	ts, _ := strconv.ParseInt(req.Header.Get("X-Webhook-Timestamp"), 10, 64)
	if req.Header.Get("X-Webhook-Signature") != webhook.Sign(secret, ts, body) {
		r.badSig++
	}
	fail := n < r.failures
	delay := r.delay
	r.mu.Unlock()
	if n == 0 && delay > 0 {
		time.Sleep(delay)
	}
	if fail {
		http.Error(w, "not yet", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func openDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// queue stores an upload and its complete event, as a delivery does.
func queue(t *testing.T, db *sqlite.DB, url string) *host.WebhookEvent {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	u := &host.Upload{ID: "u-" + strconv.FormatInt(time.Now().UnixNano(), 36), Filename: "f.bin", TotalSize: 1, ChunkSize: 1, TotalParts: 1,
		StorageBackend: "local", WebhookURL: url, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := db.CreateUpload(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	u.FinalPath, u.DeliveredSHA256 = "/data/f.bin", "abc"
	ev := webhook.NewEvent(host.EventUploadComplete, u, now, "")
	if err := db.MarkComplete(context.Background(), u.ID, u.FinalPath, "abc", 1, now, ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func waitStatus(t *testing.T, db *sqlite.DB, id, want string, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		status, attempts, err := db.EventStatus(context.Background(), id)
		if err == nil && status == want {
			return attempts
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s: status %q after %d attempts (%v), want %q", id, status, attempts, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newSender(db *sqlite.DB, opt webhook.Options) *webhook.Sender {
	if opt.Backoff == 0 {
		opt.Backoff = 50 * time.Millisecond
	}
	opt.Poll = 20 * time.Millisecond
	opt.Secret = secret
	if opt.Policy == nil {
		opt.Policy = loopbackAllowed
	}
	s := webhook.NewSender(db, opt)
	s.Start()
	return s
}

// Failing attempts are retried with the same event id and a valid signature each time.
func TestRetriesUntilDelivered(t *testing.T) {
	rec := &receiver{failures: 3}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	db := openDB(t)
	ev := queue(t, db, srv.URL+"/hook")
	s := newSender(db, webhook.Options{MaxAttempts: 5})
	defer s.Close()
	if n := waitStatus(t, db, ev.ID, webhook.StatusDelivered, 10*time.Second); n != 4 {
		t.Fatalf("delivered after %d attempts, want 4", n)
	}
	if rec.badSig != 0 {
		t.Fatalf("%d requests with a bad signature", rec.badSig)
	}
	for i, h := range rec.got {
		if h.Get("X-Webhook-Id") != ev.ID || h.Get("X-Webhook-Attempt") != strconv.Itoa(i+1) || h.Get("X-Webhook-Event") != "upload.complete" {
			t.Fatalf("attempt %d headers: %v", i+1, h)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(rec.bodies[3], &body); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"event": "upload.complete", "event_id": ev.ID, "file_id": ev.UploadID,
		"filename": "f.bin", "total_size": float64(1), "final_path": "/data/f.bin", "storage_backend": "local"} {
		if body[k] != want {
			t.Fatalf("body[%s] = %v, want %v (%v)", k, body[k], want, body)
		}
	}
	if _, err := time.Parse(time.RFC3339, body["completed_at"].(string)); err != nil {
		t.Fatalf("completed_at: %v", err)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	rec := &receiver{failures: 100}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	db := openDB(t)
	ev := queue(t, db, srv.URL)
	s := newSender(db, webhook.Options{MaxAttempts: 3})
	defer s.Close()
	if n := waitStatus(t, db, ev.ID, webhook.StatusFailed, 10*time.Second); n != 3 {
		t.Fatalf("gave up after %d attempts, want 3", n)
	}
	time.Sleep(200 * time.Millisecond)
	if rec.count() != 3 {
		t.Fatalf("receiver got %d requests after giving up, want 3", rec.count())
	}
}

// A slow receiver times out and is tried again; the wait never blocks other work.
func TestSlowReceiver(t *testing.T) {
	rec := &receiver{delay: 2 * time.Second}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	db := openDB(t)
	ev := queue(t, db, srv.URL)
	s := newSender(db, webhook.Options{MaxAttempts: 5, Timeout: 300 * time.Millisecond})
	defer s.Close()
	if n := waitStatus(t, db, ev.ID, webhook.StatusDelivered, 10*time.Second); n != 2 {
		t.Fatalf("delivered after %d attempts, want 2 (the first timed out)", n)
	}
}

// Events survive a stop: a receiver that is down while the sender runs, and a new
// sender (a restarted host) on the same database delivers once it is up.
func TestDownAcrossRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	db := openDB(t)
	ev := queue(t, db, "http://"+addr+"/hook")
	s := newSender(db, webhook.Options{MaxAttempts: 50})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, attempts, _ := db.EventStatus(context.Background(), ev.ID); attempts >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no attempts while the receiver was down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Close() // the host stops
	rec := &receiver{}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rec}
	go srv.Serve(ln)
	defer srv.Close()
	s2 := newSender(db, webhook.Options{MaxAttempts: 50}) // the host is back
	defer s2.Close()
	waitStatus(t, db, ev.ID, webhook.StatusDelivered, 15*time.Second)
	if rec.count() != 1 || rec.got[0].Get("X-Webhook-Id") != ev.ID {
		t.Fatalf("receiver got %d requests", rec.count())
	}
}

func TestNoWebhookNoEvent(t *testing.T) {
	if ev := webhook.NewEvent(host.EventUploadComplete, &host.Upload{ID: "x"}, time.Now(), ""); ev != nil {
		t.Fatalf("event without a webhook URL: %+v", ev)
	}
	ev := webhook.NewEvent(host.EventUploadFailed, &host.Upload{ID: "x", WebhookURL: "http://h/"}, time.Now(), "backend down")
	var body map[string]any
	json.Unmarshal(ev.Body, &body)
	if body["event"] != "upload.failed" || body["error"] != "backend down" || body["failed_at"] == nil {
		t.Fatalf("failed event body: %v", body)
	}
}
