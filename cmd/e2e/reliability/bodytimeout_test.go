package reliability

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// TestStalledBodyIsCut: with BODY_IDLE_TIMEOUT=2s, a part body that stops sending is
// answered 408 body_timeout and its connection closed, and the part stays pending with
// nothing left in staging; a JSON body that stalls likewise. A body that trickles (a piece
// every second, longer in all than the timeout) is taken: the deadline moves with
// progress. Before, a stalled body was held open for as long as the client liked.
func TestStalledBodyIsCut(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Second
	s := startServer(t, "local", map[string]string{"BODY_IDLE_TIMEOUT": idle.String()})
	data := harness.RandomBytes(2*mib, 31)
	parts := harness.PartData(data, mib)
	up := s.InitUpload(t, map[string]any{"filename": "stall/a.bin", "total_size": len(data)})
	addr := s.Addr()

	// Part 0: a quarter of the body, then nothing.
	c := dialHeld(t, addr)
	head := keepAliveHead(addr, http.MethodPut, fmt.Sprintf("/upload/%s/part/0", up.FileID), harness.PartHeaders(up.Parts[0].Token), mib, false)
	if _, err := io.WriteString(c.conn, head); err != nil {
		t.Fatal(err)
	}
	if _, err := c.conn.Write(parts[0][:mib/4]); err != nil {
		t.Fatal(err)
	}
	stalled := time.Now()
	r, err := c.answer(idle + 15*time.Second)
	if err != nil {
		t.Fatalf("no answer to a part body stalled for %v (BODY_IDLE_TIMEOUT=%v): %v", idle+15*time.Second, idle, err)
	}
	answered := time.Since(stalled)
	harness.ExpectError(t, r, http.StatusRequestTimeout, "body_timeout")
	if closed, err := c.closedWithin(5 * time.Second); !closed {
		t.Errorf("connection not closed after body_timeout (%v)", err)
	}
	if answered < idle-100*time.Millisecond {
		t.Errorf("a body idle for %v was cut, before BODY_IDLE_TIMEOUT=%v", answered, idle)
	}
	t.Logf("a part body stalled after %d of %d bytes was answered 408 and closed %v after its last byte (BODY_IDLE_TIMEOUT=%v)",
		mib/4, mib, answered.Round(time.Millisecond), idle)
	if st := s.Status(t, up.FileID); st.UploadedParts != 0 || st.Parts[0].Status != "pending" {
		t.Errorf("after the stalled body: %+v, want part 0 pending", st)
	}
	if files := s.StagedFiles(t, up.FileID); len(files) != 0 {
		t.Errorf("staging holds %v after the stalled body, want nothing", files)
	}

	// A JSON body that stalls.
	j := dialHeld(t, addr)
	io.WriteString(j.conn, keepAliveHead(addr, http.MethodPost, "/upload/init",
		map[string]string{"X-API-Key": harness.APIKey, "Content-Type": "application/json"}, 100, false)+`{"filename": "x`)
	r, err = j.answer(idle + 15*time.Second)
	if err != nil {
		t.Fatalf("no answer to a stalled JSON body: %v", err)
	}
	harness.ExpectError(t, r, http.StatusRequestTimeout, "body_timeout")
	if closed, err := j.closedWithin(5 * time.Second); !closed {
		t.Errorf("connection not closed after a stalled JSON body (%v)", err)
	}

	// Part 1 trickles: 8 pieces one second apart (with BODY_IDLE_TIMEOUT=2s), then the rest.
	tr := dialHeld(t, addr)
	io.WriteString(tr.conn, keepAliveHead(addr, http.MethodPut, fmt.Sprintf("/upload/%s/part/1", up.FileID), harness.PartHeaders(up.Parts[1].Token), mib, false))
	start := time.Now()
	piece := 4 << 10
	for i := range 4 * int(idle/time.Second) {
		if _, err := tr.conn.Write(parts[1][i*piece : (i+1)*piece]); err != nil {
			t.Fatalf("trickling piece %d, %v in: %v", i, time.Since(start).Round(time.Millisecond), err)
		}
		time.Sleep(time.Second)
	}
	if _, err := tr.conn.Write(parts[1][4*int(idle/time.Second)*piece:]); err != nil {
		t.Fatalf("the rest of the trickled part: %v", err)
	}
	r, err = tr.answer(30 * time.Second)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("a part trickled over %v with no gap of %v: %v %v, want 200", time.Since(start).Round(time.Millisecond), idle, r, err)
	}

	// The stalled part goes through on a retry, and the file is whole.
	s.MustPutPart(t, up.FileID, 0, up.Parts[0].Token, parts[0])
	c2 := s.CompleteAndWait(t, up.FileID, time.Minute)
	if harness.Str(c2.ChecksumSHA256) != harness.SHA256Hex(data) {
		t.Errorf("delivered checksum %s, want %s", harness.Str(c2.ChecksumSHA256), harness.SHA256Hex(data))
	}
	if strings.Contains(s.Logs(), `"@level":"error"`) {
		t.Errorf("a stalled client was logged as an error:\n%s", harness.Tail(s.Cur().LogPath))
	}
}
