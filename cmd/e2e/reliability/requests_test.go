package reliability

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// TestFilenamesThatMisleadOrBreakShares: init refuses names with bidirectional controls,
// zero-width and other invisible characters, and Windows device names as any component
// (400 invalid_filename); names that only look similar are accepted and delivered as
// given. Before, all of them were accepted.
func TestFilenamesThatMisleadOrBreakShares(t *testing.T) {
	t.Parallel()
	s := startServer(t, "local", nil)
	refused := map[string]string{
		"right-to-left override":  "invoice\u202egpj.exe",
		"left-to-right isolate":   "a\u2066b.txt",
		"zero-width space":        "pay\u200bpal/statement.pdf",
		"zero-width joiner":       "a\u200d.txt",
		"byte order mark":         "\ufeffreport.pdf",
		"soft hyphen":             "in\u00advoice.pdf",
		"hangul filler":           "\u3164.txt",
		"line separator":          "a\u2028b.txt",
		"CON":                     "CON",
		"nul with extension":      "backup/nul.tar.gz",
		"COM1 as a directory":     "a/COM1/b.txt",
		"lpt9 mixed case":         "Lpt9.log",
		"AUX deep":                "x/y/aux",
		"device with space":       "prn .txt",
		"trailing dot directory":  "reports./q1.pdf",
		"trailing space dir":      "reports /q1.pdf",
		"leading space file name": " q1.pdf",
	}
	for name, filename := range refused {
		r := s.API(t, http.MethodPost, "/upload/init", map[string]any{"filename": filename, "total_size": 10})
		if r.Status != http.StatusBadRequest {
			t.Errorf("%s (%q): %v, want 400 invalid_filename", name, filename, r)
			continue
		}
		harness.ExpectError(t, r, http.StatusBadRequest, "invalid_filename")
	}
	for _, filename := range []string{"COM10.txt", "console.log", "nullable/conf.d/a.txt", "photos/🎉 party.jpg", "❤️.txt", "مستند.pdf"} {
		data := harness.RandomBytes(10, 70)
		up := s.InitUpload(t, map[string]any{"filename": filename, "total_size": len(data)})
		s.MustPutPart(t, up.FileID, 0, up.Parts[0].Token, data)
		c := s.CompleteAndWait(t, up.FileID, time.Minute)
		dir, name := filepath.Split(filename)
		if dir == "" {
			dir = "files/"
		}
		want := filepath.Join(s.objectRoot(), dir, up.FileID+"_"+name)
		if sum, _ := harness.FileSHA256(want); sum != harness.SHA256Hex(data) {
			t.Errorf("%q: not delivered at %s (final_path %s)", filename, want, harness.Str(c.FinalPath))
		}
	}
}

// TestRequestWithLengthAndChunkedCloses: a request with both Content-Length and
// Transfer-Encoding: chunked is answered and its connection closed (RFC 9112 6.1); so is
// any chunked request. A plain request keeps its connection. Before, the connection stayed
// open for the next request.
func TestRequestWithLengthAndChunkedCloses(t *testing.T) {
	t.Parallel()
	s := startServer(t, "local", nil)
	addr := s.Addr()
	body := []byte(`{"filename": "te/a.bin", "total_size": 10}`)
	apiHdr := map[string]string{"X-API-Key": harness.APIKey, "Content-Type": "application/json"}
	tests := map[string]struct {
		head   string
		body   []byte
		closed bool
	}{
		"Content-Length and chunked": {keepAliveHead(addr, http.MethodPost, "/upload/init", apiHdr, int64(len(body)), true),
			append(chunk(body), chunk(nil)...), true},
		"chunked": {keepAliveHead(addr, http.MethodPost, "/upload/init", apiHdr, -1, true),
			append(chunk(body), chunk(nil)...), true},
		"Content-Length": {keepAliveHead(addr, http.MethodPost, "/upload/init", apiHdr, int64(len(body)), false), body, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := dialHeld(t, addr)
			if _, err := c.conn.Write(append([]byte(tc.head), tc.body...)); err != nil {
				t.Fatal(err)
			}
			r, err := c.answer(10 * time.Second)
			if err != nil || r.Status != http.StatusOK {
				t.Fatalf("got %v %v, want 200", r, err)
			}
			wait := 5 * time.Second // a closing server closes right after the answer
			if !tc.closed {
				wait = 500 * time.Millisecond
			}
			closed, err := c.closedWithin(wait)
			if err != nil {
				t.Fatal(err)
			}
			if closed != tc.closed {
				t.Fatalf("connection closed after the answer: %v, want %v", closed, tc.closed)
			}
			if tc.closed && r.Header.Get("Connection") != "close" {
				t.Errorf("answer without Connection: close: %v", r.Header)
			}
		})
	}
}

// TestAnswerHeadersAndRequestIDs: every answer, errors included, carries
// X-Content-Type-Options: nosniff; a client's X-Request-Id is echoed and logged only when it
// is 1-64 of [A-Za-z0-9._-], otherwise replaced by a fresh id. Before, nosniff was missing
// and any id of up to 64 bytes was echoed and logged.
func TestAnswerHeadersAndRequestIDs(t *testing.T) {
	t.Parallel()
	s := startServer(t, "local", map[string]string{"LOG_LEVEL": "debug"})
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/health"}, {http.MethodGet, "/nope"}, {http.MethodDelete, "/health"},
		{http.MethodPost, "/upload/init"}, {http.MethodPut, "/upload/x/part/0"}, {http.MethodGet, "/metrics"},
	} {
		r := s.Do(t, c.method, c.path, nil, nil)
		if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s (%d): X-Content-Type-Options %q, want nosniff", c.method, c.path, r.Status, got)
		}
	}

	safe := "client-req_42.a"
	r := s.Do(t, http.MethodGet, "/nope", nil, map[string]string{"X-Request-Id": safe})
	if got := r.Header.Get("X-Request-Id"); got != safe {
		t.Errorf("safe X-Request-Id %q answered as %q, want it echoed", safe, got)
	}
	for _, bad := range []string{"<script>alert(1)</script>", `x" level=error msg="forged`, "a b", strings.Repeat("z", 65), "ünïcode"} {
		r := s.Do(t, http.MethodGet, "/nope", nil, map[string]string{"X-Request-Id": bad})
		got := r.Header.Get("X-Request-Id")
		if got == bad || got == "" || strings.ContainsAny(got, `<>" `) {
			t.Errorf("X-Request-Id %q answered as %q, want a fresh id", bad, got)
		}
		var e struct{ Code string }
		if err := json.Unmarshal(r.Body, &e); err != nil || e.Code != "route_not_found" {
			t.Errorf("X-Request-Id %q: answer %v", bad, r)
		}
	}
	time.Sleep(200 * time.Millisecond) // the log is written as requests end
	logs := s.Logs()
	if !strings.Contains(logs, safe) {
		t.Errorf("the safe request id is not in the log")
	}
	for _, bad := range []string{"<script>", "forged", "ünïcode"} {
		if strings.Contains(logs, bad) {
			t.Errorf("the log holds the client's unsafe request id (%q)", bad)
		}
	}
}
