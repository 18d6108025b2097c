package reliability

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

const webhookSecret = "reliability-webhook-secret-0123456789"

// hookRequest is one webhook request as the receiver saw it.
type hookRequest struct {
	at     time.Time
	Header http.Header
	Body   []byte
	answer int
}

// receiver is a webhook endpoint on a fixed loopback port that can be stopped and
// started again on the same port.
type receiver struct {
	addr string
	// fail is how many requests to answer 500 before answering 200.
	fail int

	mu   sync.Mutex
	reqs []hookRequest
	srv  *http.Server
	got  chan struct{} // signalled on each request
}

func newReceiver(tb testing.TB, fail int) *receiver {
	tb.Helper()
	port, err := harness.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	rc := &receiver{addr: "127.0.0.1:" + strconv.Itoa(port), fail: fail, got: make(chan struct{}, 100)}
	tb.Cleanup(rc.stop)
	return rc
}

func (rc *receiver) url() string { return "http://" + rc.addr + "/hook" }

func (rc *receiver) start(tb testing.TB) {
	tb.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment after a stop
		if ln, err = net.Listen("tcp", rc.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("receiver: listen on %s: %v", rc.addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(rc.serve), ReadHeaderTimeout: 10 * time.Second}
	rc.mu.Lock()
	rc.srv = srv
	rc.mu.Unlock()
	go srv.Serve(ln)
}

func (rc *receiver) stop() {
	rc.mu.Lock()
	srv := rc.srv
	rc.srv = nil
	rc.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rc.mu.Lock()
	answer := http.StatusOK
	if len(rc.reqs) < rc.fail {
		answer = http.StatusInternalServerError
	}
	rc.reqs = append(rc.reqs, hookRequest{at: time.Now(), Header: r.Header.Clone(), Body: body, answer: answer})
	rc.mu.Unlock()
	w.WriteHeader(answer)
	select {
	case rc.got <- struct{}{}:
	default:
	}
}

func (rc *receiver) requests() []hookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookRequest(nil), rc.reqs...)
}

// waitDelivered waits until n requests were answered 2xx and returns all requests.
func (rc *receiver) waitDelivered(tb testing.TB, n int, timeout time.Duration) []hookRequest {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		reqs := rc.requests()
		ok := 0
		for _, r := range reqs {
			if r.answer/100 == 2 {
				ok++
			}
		}
		if ok >= n {
			return reqs
		}
		select {
		case <-rc.got:
		case <-time.After(time.Until(deadline)):
			tb.Fatalf("%d webhook deliveries within %v, want %d; requests: %d", ok, timeout, n, len(reqs))
		}
	}
}

// hookEvent is the JSON body of a webhook.
type hookEvent struct {
	Event          string  `json:"event"`
	EventID        string  `json:"event_id"`
	FileID         string  `json:"file_id"`
	Filename       string  `json:"filename"`
	TotalSize      int64   `json:"total_size"`
	FinalPath      *string `json:"final_path"`
	ChecksumSHA256 *string `json:"checksum_sha256"`
	StorageBackend string  `json:"storage_backend"`
	CompletedAt    *string `json:"completed_at"`
	Error          *string `json:"error"`
	FailedAt       *string `json:"failed_at"`
}

// checkHook verifies one request's headers and signature and returns its event.
func checkHook(tb testing.TB, r hookRequest, attempt int) hookEvent {
	tb.Helper()
	h := r.Header
	ts := h.Get("X-Webhook-Timestamp")
	m := hmac.New(sha256.New, []byte(webhookSecret))
	m.Write([]byte(ts + "."))
	m.Write(r.Body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	if got := h.Get("X-Webhook-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		tb.Errorf("attempt %d: X-Webhook-Signature %q, want %q (HMAC-SHA256 of \"<ts>.<body>\")", attempt, got, want)
	}
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		tb.Errorf("attempt %d: X-Webhook-Timestamp %q is not the time of the attempt", attempt, ts)
	}
	if got := h.Get("X-Webhook-Attempt"); got != strconv.Itoa(attempt) {
		tb.Errorf("X-Webhook-Attempt = %q, want %d", got, attempt)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("attempt %d: Content-Type %q", attempt, ct)
	}
	var ev hookEvent
	if err := json.Unmarshal(r.Body, &ev); err != nil {
		tb.Fatalf("attempt %d: body %s: %v", attempt, r.Body, err)
	}
	if ev.EventID != h.Get("X-Webhook-Id") || !strings.HasPrefix(ev.EventID, "evt_") {
		tb.Errorf("attempt %d: event_id %q, X-Webhook-Id %q", attempt, ev.EventID, h.Get("X-Webhook-Id"))
	}
	if ev.Event != h.Get("X-Webhook-Event") {
		tb.Errorf("attempt %d: event %q, X-Webhook-Event %q", attempt, ev.Event, h.Get("X-Webhook-Event"))
	}
	return ev
}

// checkComplete asserts an upload.complete event of the delivered upload.
func checkCompleteEvent(tb testing.TB, ev hookEvent, id string, c harness.CompleteResponse) {
	tb.Helper()
	if ev.Event != "upload.complete" || ev.FileID != id || ev.FinalPath == nil || *ev.FinalPath != harness.Str(c.FinalPath) ||
		ev.ChecksumSHA256 == nil || *ev.ChecksumSHA256 != harness.Str(c.ChecksumSHA256) || ev.CompletedAt == nil || ev.Error != nil {
		tb.Errorf("event %+v, want upload.complete of %s with final_path %s and checksum_sha256 %s", ev, id, harness.Str(c.FinalPath), harness.Str(c.ChecksumSHA256))
	}
}

// TestWebhookRetries: the receiver fails the first two attempts; the third delivers. All
// three carry one event id, attempts 1, 2, 3 and a valid signature.
func TestWebhookRetries(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 2)
	rc.start(t)
	s := startServer(t, "local", map[string]string{"WEBHOOK_SECRET": webhookSecret, "WEBHOOK_BACKOFF": "200ms", "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"})
	data := harness.RandomBytes(mib+100, 10)
	up := s.InitUpload(t, map[string]any{"filename": "hook/a.bin", "total_size": len(data), "webhook_url": rc.url()})
	s.UploadParts(t, up, harness.PartData(data, mib), 2)
	completed := time.Now()
	c := s.CompleteAndWait(t, up.FileID, time.Minute)
	reqs := rc.waitDelivered(t, 1, time.Minute)
	// A duplicate would come at the sender's next look at its outbox (5 s).
	time.Sleep(6 * time.Second)
	reqs = rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d webhook requests, want 3 (two 500s, then 200)", len(reqs))
	}
	var gaps []string
	late := ""
	for i, r := range reqs {
		ev := checkHook(t, r, i+1)
		checkCompleteEvent(t, ev, up.FileID, c)
		if r.Header.Get("X-Webhook-Id") != reqs[0].Header.Get("X-Webhook-Id") {
			t.Errorf("attempt %d has event id %s, attempt 1 %s", i+1, r.Header.Get("X-Webhook-Id"), reqs[0].Header.Get("X-Webhook-Id"))
		}
		prev := completed
		if i > 0 {
			prev = reqs[i-1].at
			gap := r.at.Sub(prev)
			// Attempt n+1 is due WEBHOOK_BACKOFF x 2^(n-1) (+-20%) after attempt n; allow a
			// second more for the outbox's whole-second timestamps.
			backoff := 200 * time.Millisecond << (i - 1)
			if gap < backoff*8/10-50*time.Millisecond {
				t.Errorf("attempt %d came %v after attempt %d, want at least %v (WEBHOOK_BACKOFF=200ms, doubling, -20%%)", i+1, gap, i, backoff)
			}
			if gap > backoff*12/10+time.Second && late == "" {
				late = fmt.Sprintf("attempt %d came %v after attempt %d, want about %v (WEBHOOK_BACKOFF=200ms, doubling)", i+1, gap.Round(time.Millisecond), i, backoff)
			}
		}
		gaps = append(gaps, r.at.Sub(prev).Round(time.Millisecond).String())
	}
	t.Logf("attempts at +%v after complete (each after the previous): %v", reqs[2].at.Sub(completed).Round(time.Millisecond), gaps)
	if late != "" {
		t.Errorf("retries do not follow WEBHOOK_BACKOFF: %s", late)
	}
}

// TestWebhookFailedDelivery: a delivery that fails (the plugin crashes in Put) sends
// upload.failed; the retried delivery then sends upload.complete with another event id.
func TestWebhookFailedDelivery(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0)
	rc.start(t)
	s := startServer(t, "fault", map[string]string{"WEBHOOK_SECRET": webhookSecret, "WEBHOOK_BACKOFF": "200ms", "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"})
	data := harness.RandomBytes(3*mib, 11)
	up := s.InitUpload(t, map[string]any{"filename": "hook/fail.bin", "total_size": len(data), "webhook_url": rc.url()})
	s.UploadParts(t, up, harness.PartData(data, mib), 3)

	s.fault(t, "crash-put", true)
	r := s.Complete(t, up.FileID)
	s.fault(t, "crash-put", false)
	harness.ExpectErrorOneOf(t, r, map[string]int{"backend_unavailable": 503, "delivery_failed": 502})
	reqs := rc.waitDelivered(t, 1, 30*time.Second)
	failed := checkHook(t, reqs[0], 1)
	if failed.Event != "upload.failed" || failed.FileID != up.FileID || failed.Error == nil || *failed.Error == "" ||
		failed.FailedAt == nil || failed.FinalPath != nil || failed.ChecksumSHA256 != nil || failed.CompletedAt != nil {
		t.Errorf("event after the crash: %s, want upload.failed with error and failed_at, no final_path/checksum_sha256/completed_at", reqs[0].Body)
	}
	t.Logf("upload.failed: %s", reqs[0].Body)

	c := s.CompleteAndWait(t, up.FileID, time.Minute)
	reqs = rc.waitDelivered(t, 2, 30*time.Second)
	ev := checkHook(t, reqs[1], 1)
	checkCompleteEvent(t, ev, up.FileID, c)
	if ev.EventID == failed.EventID {
		t.Errorf("upload.complete reuses the event id %s of upload.failed", ev.EventID)
	}
}

// TestWebhookAcrossRestart: the receiver is down when the upload completes and stays down
// until the host was stopped; it comes back, the host starts again, and the event is
// delivered then, once.
func TestWebhookAcrossRestart(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0) // not started: down
	s := startServer(t, "local", map[string]string{"WEBHOOK_SECRET": webhookSecret, "WEBHOOK_BACKOFF": "200ms", "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"})
	data := harness.RandomBytes(mib, 12)
	up := s.InitUpload(t, map[string]any{"filename": "hook/restart.bin", "total_size": len(data), "webhook_url": rc.url()})
	s.MustPutPart(t, up.FileID, 0, up.Parts[0].Token, data)
	c := s.CompleteAndWait(t, up.FileID, time.Minute)
	if !harness.WaitFor(30*time.Second, func() bool { return strings.Contains(s.Logs(), "webhook attempt failed") }) {
		t.Fatal("no failed webhook attempt logged within 30 s with the receiver down")
	}
	if code := s.Stop(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	rc.start(t)
	restarted := time.Now()
	s.Start(t)
	reqs := rc.waitDelivered(t, 1, time.Minute)
	t.Logf("delivered %v after the restart, attempt %s", reqs[0].at.Sub(restarted).Round(time.Millisecond), reqs[0].Header.Get("X-Webhook-Attempt"))
	attempt, _ := strconv.Atoi(reqs[0].Header.Get("X-Webhook-Attempt"))
	if attempt < 2 {
		t.Errorf("X-Webhook-Attempt %d, want at least 2 (the first failed before the restart)", attempt)
	}
	ev := checkHook(t, reqs[0], attempt)
	checkCompleteEvent(t, ev, up.FileID, c)
	time.Sleep(6 * time.Second)
	if n := len(rc.requests()); n != 1 {
		t.Errorf("%d webhook requests after the restart, want 1", n)
	}
}
