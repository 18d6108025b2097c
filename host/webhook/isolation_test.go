package webhook_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host/webhook"
)

// blockingReceiver holds every request until release is closed, and counts them.
type blockingReceiver struct {
	release chan struct{}
	mu      sync.Mutex
	n       int
	arrived chan struct{}
}

func newBlockingReceiver() *blockingReceiver {
	return &blockingReceiver{release: make(chan struct{}), arrived: make(chan struct{}, 100)}
}

func (b *blockingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.n++
	b.mu.Unlock()
	b.arrived <- struct{}{}
	select {
	case <-b.release:
	case <-r.Context().Done():
	}
	w.WriteHeader(http.StatusOK)
}

// A slow receiver does not delay another: the fast receiver's event, queued after three
// for the slow one, is delivered while the slow one still holds its first request.
func TestSlowReceiverDoesNotDelayOthers(t *testing.T) {
	slow := newBlockingReceiver()
	slowSrv := httptest.NewServer(slow)
	defer slowSrv.Close()
	defer close(slow.release)
	fast := &receiver{}
	fastSrv := httptest.NewServer(fast)
	defer fastSrv.Close()

	db := openDB(t)
	var slowEvents []string
	for range 3 {
		slowEvents = append(slowEvents, queue(t, db, slowSrv.URL+"/slow").ID)
	}
	fastEv := queue(t, db, fastSrv.URL+"/fast")
	s := newSender(db, webhook.Options{MaxAttempts: 3, Timeout: time.Minute})
	defer s.Close()

	select {
	case <-slow.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow receiver got no request")
	}
	waitStatus(t, db, fastEv.ID, webhook.StatusDelivered, 10*time.Second)
	slow.mu.Lock()
	held := slow.n
	slow.mu.Unlock()
	if held != 1 {
		t.Errorf("the slow receiver got %d requests at once, want 1 (one attempt per receiver at a time)", held)
	}
	for _, id := range slowEvents {
		if status, _, _ := db.EventStatus(context.Background(), id); status != webhook.StatusPending {
			t.Errorf("slow event %s is %s while its receiver holds the first request, want pending", id, status)
		}
	}
}

// Without WEBHOOK_ALLOWED_HOSTS a loopback receiver is never contacted.
func TestRefusesLoopbackByDefault(t *testing.T) {
	rec := &receiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	db := openDB(t)
	ev := queue(t, db, srv.URL+"/hook")
	var logs syncBuffer
	s := newSender(db, webhook.Options{MaxAttempts: 2, Policy: &webhook.Policy{},
		Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})})
	defer s.Close()
	waitStatus(t, db, ev.ID, webhook.StatusFailed, 10*time.Second)
	if rec.count() != 0 {
		t.Fatalf("the loopback receiver got %d requests", rec.count())
	}
	if !strings.Contains(logs.String(), "not allowed") {
		t.Errorf("the log does not say why: %s", logs.String())
	}
}

// DNS rebinding: a public-looking name that resolves to 127.0.0.1 is refused at connect
// time; allowed by name, the same name is delivered to (so the refusal is not a failed
// resolution).
func TestRefusesNameResolvingToLoopback(t *testing.T) {
	rec := &receiver{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	resolver := fakeDNS(t, net.IPv4(127, 0, 0, 1))
	url := "http://rebind.example.com:" + port + "/hook"
	strict := &webhook.Policy{}
	if err := strict.CheckURL(url); err != nil {
		t.Fatalf("init check refused %s: %v (it cannot know what the name resolves to)", url, err)
	}

	db := openDB(t)
	ev := queue(t, db, url)
	s := newSender(db, webhook.Options{MaxAttempts: 2, Policy: strict, Resolver: resolver})
	waitStatus(t, db, ev.ID, webhook.StatusFailed, 10*time.Second)
	s.Close()
	if rec.count() != 0 {
		t.Fatalf("the receiver behind a rebinding name got %d requests", rec.count())
	}

	byName, err := webhook.NewPolicy([]string{"rebind.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	ev = queue(t, db, url)
	s = newSender(db, webhook.Options{MaxAttempts: 2, Policy: byName, Resolver: resolver})
	defer s.Close()
	waitStatus(t, db, ev.ID, webhook.StatusDelivered, 10*time.Second)
}

// Webhook URLs in logs carry no query and no credentials.
func TestLogsRedactURLs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connection refused: the error quotes the URL
	db := openDB(t)
	ev := queue(t, db, "http://user:pa55word@"+addr+"/hook?token=s3cret")
	var logs syncBuffer
	s := newSender(db, webhook.Options{MaxAttempts: 2, Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})})
	defer s.Close()
	waitStatus(t, db, ev.ID, webhook.StatusFailed, 10*time.Second)
	out := logs.String()
	if strings.Contains(out, "s3cret") || strings.Contains(out, "pa55word") || strings.Contains(out, "user:") {
		t.Fatalf("a secret of the webhook URL is in the log:\n%s", out)
	}
	if !strings.Contains(out, "http://"+addr+"/hook?[redacted]") {
		t.Fatalf("the log does not name the receiver (redacted):\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeDNS serves DNS on loopback UDP, answering every A query with ip and every other
// query with no records, and returns a resolver that uses it.
func fakeDNS(t *testing.T, ip net.IP) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], ip.To4()); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// dnsAnswer builds the response to query q: its question, plus an A record of ip when
// the question is of type A.
func dnsAnswer(q []byte, ip net.IP) []byte {
	if len(q) < 12 {
		return nil
	}
	off := 12
	for off < len(q) && q[off] != 0 {
		off += int(q[off]) + 1
	}
	off += 5 // the root label, type, class
	if off > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[off-4:])
	resp := append([]byte{}, q[:off]...)
	resp[2], resp[3] = 0x81, 0x80            // response, recursion desired and available, no error
	binary.BigEndian.PutUint16(resp[8:], 0)  // no authority records
	binary.BigEndian.PutUint16(resp[10:], 0) // no additional records
	if qtype != 1 {
		binary.BigEndian.PutUint16(resp[6:], 0)
		return resp
	}
	binary.BigEndian.PutUint16(resp[6:], 1)
	resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
	return append(resp, ip...)
}

// A retry is sent after its backoff, not at the next poll of the outbox.
func TestRetryFollowsBackoffNotPoll(t *testing.T) {
	rec := &receiver{failures: 1}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	db := openDB(t)
	ev := queue(t, db, srv.URL+"/hook")
	s := webhook.NewSender(db, webhook.Options{MaxAttempts: 3, Backoff: 50 * time.Millisecond, Poll: time.Hour,
		Secret: secret, Policy: loopbackAllowed})
	s.Start()
	defer s.Close()
	waitStatus(t, db, ev.ID, webhook.StatusDelivered, 10*time.Second)
}
