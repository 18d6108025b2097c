package api

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The idle deadline counts only while the handler reads, not from the request's arrival
// or the last bytes: a handler that waits before it reads (a part written in place waits
// for the backend's file or the digest) or pauses between reads does not fail a client
// whose body was there all along; a body that stalls still fails.
func TestIdleBodyCountsFromFirstRead(t *testing.T) {
	const idle = 200 * time.Millisecond
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := watchBody(w, r, idle)
		time.Sleep(3 * idle) // the handler's own wait, longer than the idle timeout
		head := make([]byte, 1<<20)
		if _, err := io.ReadFull(b, head); err != nil {
			got <- "error: " + err.Error()
			return
		}
		time.Sleep(3 * idle) // a pause between reads (the disk taking the buffers)
		data, err := io.ReadAll(b)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- fmt.Sprintf("%d bytes", len(head)+len(data))
	}))
	defer srv.Close()
	// As curl sends a large body: after the server's 100 Continue, which the handler's
	// first read sends, so no body byte is there before it.
	body := strings.Repeat("x", 8<<20)
	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(body))
	req.Header.Set("Expect", "100-continue")
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if g := <-got; g != fmt.Sprintf("%d bytes", len(body)) {
		t.Fatalf("the handler read %q, want the whole body", g)
	}

	// A body that stalls after its first bytes still times out.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("first"))
		time.Sleep(10 * idle)
		pw.Close()
	}()
	req, _ = http.NewRequest("POST", srv.URL, pr)
	req.ContentLength = 100
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case g := <-got:
		if !strings.HasPrefix(g, "error: ") || !strings.Contains(g, "timeout") {
			t.Fatalf("a stalled body gave %q, want a timeout", g)
		}
	case <-time.After(8 * idle):
		t.Fatal("a stalled body did not time out")
	}
}
