package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// TestFileSHA checks the digest of the benchmark's file (a part repeated, the last cut
// short) against one of the same bytes built in memory.
func TestFileSHA(t *testing.T) {
	data := []byte("0123456789")
	want := sha256.Sum256(bytes.Repeat(data, 3)[:25])
	if got := fileSHA(data, 25); got != hex.EncodeToString(want[:]) {
		t.Errorf("fileSHA = %s, want %x", got, want)
	}
}

// TestRequestTimes reads a host request log: the last 200 to a part of the upload, and the
// first answer to its complete (here a 202, then a 200 on a second call).
func TestRequestTimes(t *testing.T) {
	log := `{"@level":"info","@message":"upload created","@timestamp":"2026-12-01T10:00:00.000000Z","upload_id":"u1"}
{"@level":"debug","@message":"request","@timestamp":"2026-12-01T10:00:01.000000Z","method":"PUT","path":"/upload/u1/part/1","status":200,"ms":5}
{"@level":"debug","@message":"request","@timestamp":"2026-12-01T10:00:03.500000Z","method":"PUT","path":"/upload/u1/part/0","status":200,"ms":5}
{"@level":"debug","@message":"request","@timestamp":"2026-12-01T10:00:04.000000Z","method":"PUT","path":"/upload/u1/part/2","status":429,"ms":1}
{"@level":"debug","@message":"request","@timestamp":"2026-12-01T10:00:04.000000Z","method":"PUT","path":"/upload/u2/part/0","status":200,"ms":1}
{"@level":"debug","@message":"request","@timestamp":"2026-12-01T10:00:04.250000Z","method":"PUT","path":"/upload/u1/part/2","status":200,"ms":1}
not json
{"@level":"debug","@message":"request","@timestamp":"2026-12-01T10:00:24.250000Z","method":"POST","path":"/upload/u1/complete","status":202,"ms":20000}
{"@level":"debug","@message":"request","@timestamp":"2026-12-01T10:00:30.000000Z","method":"POST","path":"/upload/u1/complete","status":200,"ms":1}
`
	path := filepath.Join(t.TempDir(), "host.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	last, complete, code, err := requestTimes(path, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if got := complete.Sub(last).Seconds(); got != 20 || code != 202 {
		t.Errorf("complete %v after the last part with status %d, want 20 s and 202", got, code)
	}
	if _, _, _, err := requestTimes(path, "u3"); err == nil {
		t.Error("requestTimes of an upload not in the log: no error")
	}
}

// TestWindow checks that no part more than the window's size ahead of the lowest one not
// yet answered is handed out.
func TestWindow(t *testing.T) {
	w := newWindow(6, 3)
	for want := range 3 {
		if n, ok := w.take(); !ok || n != want {
			t.Fatalf("take = %d, %v; want %d", n, ok, want)
		}
	}
	w.ack(1)
	if !w.blocked() {
		t.Fatal("part 3 handed out while part 0 is unanswered and 3 parts are out")
	}
	w.ack(0)
	if w.blocked() {
		t.Fatal("blocked after parts 0 and 1 were answered")
	}
	for want := 3; want < 5; want++ {
		if n, ok := w.take(); !ok || n != want {
			t.Fatalf("take = %d, %v; want %d", n, ok, want)
		}
	}
	if !w.blocked() {
		t.Fatal("part 5 handed out while part 2 is unanswered")
	}
	w.ack(2)
	if n, ok := w.take(); !ok || n != 5 {
		t.Fatalf("take = %d, %v; want 5", n, ok)
	}
	if _, ok := w.take(); ok {
		t.Fatal("take after the last part: ok")
	}
}
