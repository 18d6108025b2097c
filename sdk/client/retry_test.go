package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flakyServer answers status `status` (with Retry-After `retryAfter` if set) to the first
// `failures` requests and a health body afterwards. It counts the requests.
func flakyServer(t *testing.T, status, failures int, retryAfter string) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if int(calls.Add(1)) <= failures {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			fail(w, status, "some_code", "injected")
			return
		}
		reply(w, 200, Status{FileID: "x", Status: StatusPending})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// recordingClient returns a client whose waits are recorded instead of slept.
func recordingClient(t *testing.T, url string, p RetryPolicy) (*Client, *[]time.Duration) {
	t.Helper()
	c, err := New(url, "k", WithRetry(p))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var waits []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		return ctx.Err()
	}
	return c, &waits
}

func TestRetryByStatus(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		status    int
		wantCalls int32
		wantErr   bool
	}{
		"500 retried":     {500, 3, false},
		"502 retried":     {502, 3, false},
		"503 retried":     {503, 3, false},
		"504 retried":     {504, 3, false},
		"507 retried":     {507, 3, false},
		"408 retried":     {408, 3, false},
		"429 retried":     {429, 3, false},
		"400 not retried": {400, 1, true},
		"401 not retried": {401, 1, true},
		"403 not retried": {403, 1, true},
		"404 not retried": {404, 1, true},
		"409 not retried": {409, 1, true},
		"410 not retried": {410, 1, true},
		"413 not retried": {413, 1, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, calls := flakyServer(t, tc.status, 2, "")
			c, _ := recordingClient(t, srv.URL, RetryPolicy{})
			_, err := c.Status(t.Context(), "x", StatusOptions{})
			if got := calls.Load(); got != tc.wantCalls {
				t.Errorf("%d requests, want %d", got, tc.wantCalls)
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("err = %v, want success after retries", err)
				}
				return
			}
			ae, ok := errors.AsType[*APIError](err)
			if !ok || ae.Status != tc.status || ae.Code != "some_code" || ae.Message != "injected" || ae.RequestID != "req-1" {
				t.Fatalf("err = %#v, want *APIError{%d some_code injected req-1}", err, tc.status)
			}
		})
	}
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	srv, calls := flakyServer(t, 503, 100, "")
	c, waits := recordingClient(t, srv.URL, RetryPolicy{MaxAttempts: 4})
	_, err := c.Status(t.Context(), "x", StatusOptions{})
	if ae, ok := errors.AsType[*APIError](err); !ok || ae.Status != 503 {
		t.Fatalf("err = %v, want the last 503", err)
	}
	if calls.Load() != 4 || len(*waits) != 3 {
		t.Errorf("%d requests and %d waits, want 4 and 3", calls.Load(), len(*waits))
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	date := time.Now().Add(4 * time.Second).UTC().Format(http.TimeFormat)
	tests := map[string]struct {
		header  string
		maxWait time.Duration
		min     time.Duration
		max     time.Duration
	}{
		"seconds":            {"3", 30 * time.Second, 3 * time.Second, 3 * time.Second},
		"http date":          {date, 30 * time.Second, 2 * time.Second, 4 * time.Second},
		"capped by MaxDelay": {"120", 10 * time.Second, 10 * time.Second, 10 * time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, _ := flakyServer(t, 429, 1, tc.header)
			c, waits := recordingClient(t, srv.URL, RetryPolicy{MaxDelay: tc.maxWait})
			if _, err := c.Status(t.Context(), "x", StatusOptions{}); err != nil {
				t.Fatal(err)
			}
			if len(*waits) != 1 || (*waits)[0] < tc.min || (*waits)[0] > tc.max {
				t.Errorf("waits = %v, want one in [%v, %v]", *waits, tc.min, tc.max)
			}
		})
	}
}

func TestBackoffBounded(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{MaxAttempts: 10, BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second}.withDefaults()
	top := func(n int64) int64 { return n - 1 } // the largest value full jitter can draw
	want := []time.Duration{500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000}
	for i, w := range want {
		got := p.delay(i+1, errors.New("x"), top)
		if w := w*time.Millisecond - 1; got != w {
			t.Errorf("retry %d: ceiling %v, want %v", i+1, got, w)
		}
		if got := p.delay(i+1, errors.New("x"), func(int64) int64 { return 0 }); got != 0 {
			t.Errorf("retry %d: floor %v, want 0", i+1, got)
		}
	}
	if got := p.delay(200, errors.New("x"), top); got != 30*time.Second-1 {
		t.Errorf("retry 200: %v, want the cap (no overflow)", got)
	}
	// Real jitter stays inside the bounds.
	for range 1000 {
		if d := p.delay(3, errors.New("x"), randInt63n); d < 0 || d >= 2*time.Second {
			t.Fatalf("jittered delay %v outside [0, 2s)", d)
		}
	}
}

func TestRetryNetworkError(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close() // no answer at all
			return
		}
		reply(w, 200, Status{FileID: "x"})
	}))
	t.Cleanup(srv.Close)
	c, waits := recordingClient(t, srv.URL, RetryPolicy{})
	if _, err := c.Status(t.Context(), "x", StatusOptions{}); err != nil {
		t.Fatalf("err = %v, want success on the retry", err)
	}
	if calls.Load() != 2 || len(*waits) != 1 {
		t.Errorf("%d requests, %d waits; want 2 and 1", calls.Load(), len(*waits))
	}
}

func TestRetryStopsOnCancel(t *testing.T) {
	t.Parallel()
	srv, calls := flakyServer(t, 503, 100, "")
	c, err := New(srv.URL, "k", WithRetry(RetryPolicy{BaseDelay: time.Hour, MaxDelay: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	c.rand = func(n int64) int64 { return n - 1 }
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Status(ctx, "x", StatusOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second || calls.Load() != 1 {
		t.Errorf("returned after %v and %d requests; want promptly after 1", d, calls.Load())
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := map[string]struct {
		in   string
		want time.Duration
	}{
		"empty":    {"", 0},
		"seconds":  {"7", 7 * time.Second},
		"zero":     {"0", 0},
		"negative": {"-3", 0},
		"garbage":  {"soon", 0},
		"date":     {now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		"past":     {now.Add(-time.Minute).Format(http.TimeFormat), 0},
		"huge":     {"99999999999", 24 * time.Hour},
	}
	for name, tc := range tests {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("%s: parseRetryAfter(%q) = %v, want %v", name, tc.in, got, tc.want)
		}
	}
}
