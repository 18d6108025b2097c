package reliability

import (
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// holdingReceiver is a webhook endpoint that holds every request until released.
type holdingReceiver struct {
	srv     *http.Server
	addr    string
	release chan struct{}
	mu      sync.Mutex
	got     int
	arrived chan struct{}
}

func newHoldingReceiver(tb testing.TB) *holdingReceiver {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	h := &holdingReceiver{addr: ln.Addr().String(), release: make(chan struct{}), arrived: make(chan struct{}, 100)}
	h.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.got++
		h.mu.Unlock()
		h.arrived <- struct{}{}
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusOK)
	})}
	go h.srv.Serve(ln)
	tb.Cleanup(func() {
		h.unblock()
		h.srv.Close()
	})
	return h
}

func (h *holdingReceiver) unblock() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

func (h *holdingReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got
}

// TestWebhookSlowReceiverDoesNotDelayOthers: three events wait for a receiver that holds
// its requests; an event for another receiver, queued after them, is delivered while the
// slow one still holds its first request. The slow receiver gets one request at a time, and
// all its events are delivered once it answers. Before, webhooks were sent one at a time and
// the fast receiver waited behind the slow one.
func TestWebhookSlowReceiverDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	slow := newHoldingReceiver(t)
	fast := newReceiver(t, 0)
	fast.start(t)
	s := startServer(t, "local", map[string]string{"WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", "WEBHOOK_TIMEOUT": "2m",
		"WEBHOOK_SECRET": webhookSecret})

	var slowIDs []string
	for i := range 3 {
		up := s.InitUpload(t, map[string]any{"filename": "hooks/slow.bin", "total_size": 10, "webhook_url": "http://" + slow.addr + "/slow"})
		s.MustPutPart(t, up.FileID, 0, up.Parts[0].Token, harness.RandomBytes(10, uint64(50+i)))
		s.CompleteAndWait(t, up.FileID, time.Minute)
		slowIDs = append(slowIDs, up.FileID)
	}
	select {
	case <-slow.arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow receiver got no webhook within 30 s")
	}
	up := s.InitUpload(t, map[string]any{"filename": "hooks/fast.bin", "total_size": 10, "webhook_url": fast.url()})
	s.MustPutPart(t, up.FileID, 0, up.Parts[0].Token, harness.RandomBytes(10, 60))
	c := s.CompleteAndWait(t, up.FileID, time.Minute)
	completed := time.Now()
	reqs := fast.waitDelivered(t, 1, 30*time.Second)
	t.Logf("the fast receiver got its event %v after complete, while the slow one held its first request",
		reqs[0].at.Sub(completed).Round(time.Millisecond))
	checkCompleteEvent(t, checkHook(t, reqs[0], 1), up.FileID, c)
	if n := slow.count(); n != 1 {
		t.Errorf("the slow receiver got %d requests at once, want 1 (one at a time per receiver)", n)
	}

	slow.unblock()
	deadline := time.Now().Add(30 * time.Second)
	for slow.count() < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := slow.count(); n != 3 {
		t.Errorf("the slow receiver got %d requests after it answered, want 3 (its three events)", n)
	}
}
