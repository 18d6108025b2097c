package api

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/webhook"
)

func TestRequestIDAndNosniff(t *testing.T) {
	ts := newServer(t, discard{})
	tests := map[string]struct {
		id   string
		echo bool
	}{
		"safe":       {"req-1.2_AB", true},
		"max length": {strings.Repeat("a", 64), true},
		"too long":   {strings.Repeat("a", 65), false},
		"space":      {"a b", false},
		"markup":     {"<script>alert(1)</script>", false},
		"quote":      {`a"b`, false},
		"unicode":    {"é", false},
		"log forger": {"x level=error msg=forged", false},
		"empty":      {"", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.id != "" {
				hdr["X-Request-Id"] = tc.id
			}
			_, _, h := do(t, ts, call{"GET", "/nope", hdr, ""})
			got := h.Get("X-Request-Id")
			if tc.echo && got != tc.id {
				t.Fatalf("X-Request-Id %q answered %q, want it echoed", tc.id, got)
			}
			if !tc.echo && (got == tc.id || !safeRequestID(got)) {
				t.Fatalf("X-Request-Id %q answered %q, want a fresh safe id", tc.id, got)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("error answer without X-Content-Type-Options: nosniff: %v", h)
			}
		})
	}
	_, _, h := do(t, ts, call{"GET", "/health", nil, ""})
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("health answer without nosniff: %v", h)
	}
}

// rawExchange writes head (and body) on a fresh keep-alive connection, reads the answer
// and then whether the server closes the connection within wait.
func rawExchange(t *testing.T, ts *httptest.Server, head string, wait time.Duration) (*http.Response, bool) {
	t.Helper()
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer within 5 s to %q: %v", head, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.SetReadDeadline(time.Now().Add(wait))
	_, err = br.ReadByte()
	closed := err == io.EOF
	if err == nil {
		t.Fatalf("unexpected bytes after the answer")
	}
	return resp, closed
}

// An answer that leaves body bytes unread closes the connection (no draining without a
// deadline); one that read its body keeps it.
func TestUnreadBodyClosesConnection(t *testing.T) {
	ts := newServer(t, discard{})
	tests := map[string]struct {
		head   string
		status int
		closed bool
	}{
		"health with body":    {"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 200, true},
		"unknown route":       {"GET /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 404, true},
		"wrong method":        {"PATCH /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 405, true},
		"wrong key":           {"POST /upload/init HTTP/1.1\r\nHost: x\r\nX-API-Key: nope\r\nContent-Length: 100\r\n\r\n", 401, true},
		"chunked health":      {"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 200, true},
		"length and chunked":  {"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200, true},
		"read body, kept":     {"POST /upload/init HTTP/1.1\r\nHost: x\r\nX-API-Key: " + apiKey + "\r\nContent-Length: 2\r\n\r\n{}", 400, false},
		"no body, kept":       {"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 200, false},
		"empty length, kept":  {"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 200, false},
		"metrics-less 404 ok": {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 404, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wait := 5 * time.Second // a closing server closes right after the answer
			if !tc.closed {
				wait = 300 * time.Millisecond
			}
			resp, closed := rawExchange(t, ts, tc.head, wait)
			if resp.StatusCode != tc.status || closed != tc.closed {
				t.Fatalf("answer %d, connection closed %v; want %d, closed %v", resp.StatusCode, closed, tc.status, tc.closed)
			}
			if tc.closed && !resp.Close { // ReadResponse takes Connection: close into Close
				t.Fatalf("closing answer without Connection: close: %v", resp.Header)
			}
		})
	}
}

// A body that stalls longer than the idle timeout gets 408 body_timeout and the part stays
// pending; one that trickles within the timeout is taken.
func TestBodyIdleTimeout(t *testing.T) {
	ts := newServerWith(t, discard{}, WithBodyIdleTimeout(300*time.Millisecond))
	up := initUpload(t, ts, `{"filename":"slow.bin","total_size":1000}`)
	id := up["file_id"].(string)
	tok := up["parts"].([]any)[0].(map[string]any)["token"].(string)
	head := fmt.Sprintf("PUT /upload/%s/part/0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n", id, tok)

	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, head+strings.Repeat("a", 100))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), string(host.CodeBodyTimeout)) {
		t.Fatalf("stalled body: %d %s, want 408 body_timeout", resp.StatusCode, body)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after body_timeout: %v", err)
	}
	_, st, _ := do(t, ts, call{"GET", "/upload/" + id + "/status", key(), ""})
	if st["uploaded_parts"] != float64(0) {
		t.Fatalf("a stalled part was stored: %v", st)
	}

	// 1000 bytes in 10 pieces, 100 ms apart: 1 s in all, each gap under the timeout.
	c2, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, head)
	for range 10 {
		time.Sleep(100 * time.Millisecond)
		io.WriteString(c2, strings.Repeat("b", 100))
	}
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err = http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("trickled body within the timeout: %v %v, want 200", resp, err)
	}
}

func TestInitWebhookPolicy(t *testing.T) {
	strict := newServer(t, discard{})
	allowed, err := webhook.NewPolicy([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	open := newServerWith(t, discard{}, WithWebhookPolicy(allowed))
	body := func(u string) string { return `{"filename":"a","total_size":1,"webhook_url":"` + u + `"}` }
	for _, u := range []string{"http://127.0.0.1:9/h", "http://169.254.169.254/", "http://2130706433/", "http://[::1]/", "http://localhost/"} {
		status, m, _ := do(t, strict, call{"POST", "/upload/init", key(), body(u)})
		if status != 400 || m["code"] != string(host.CodeInvalidWebhookURL) {
			t.Errorf("webhook_url %s: %d %v, want 400 invalid_webhook_url", u, status, m)
		}
	}
	if status, m, _ := do(t, strict, call{"POST", "/upload/init", key(), body("https://example.com/h?t=1")}); status != 200 {
		t.Errorf("public webhook_url: %d %v", status, m)
	}
	if status, m, _ := do(t, open, call{"POST", "/upload/init", key(), body("http://127.0.0.1:9/h")}); status != 200 {
		t.Errorf("allowed webhook_url: %d %v", status, m)
	}
}
