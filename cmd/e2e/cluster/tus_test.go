package cluster

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/e2e/internal/lb"
	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// tusUploads: six uploads through the balancer with the tus protocol. Creation (POST
// /files/) goes round robin, so each node creates some; HEAD and PATCH of the URL answered,
// /files/<file_id>.<signature>, are routed by its file_id to that node. Each upload takes
// two PATCHes, the second larger than the balancer's body limit for parts, which tus
// bodies are exempt from, while a part PUT that large is still refused there. A tus
// request sent straight to another node answers 421 wrong_node.
func (c *cluster) tusUploads(t *testing.T) {
	owners := map[string]int{}
	var last, lastID string
	for i := range 6 {
		data := randomData(3*mib+700*i+1, uint64(300+i))
		name := fmt.Sprintf("tus/%s/%d.bin", c.kind, i)
		created := mustSend(t, http.MethodPost, c.url()+"/files/", harness.TusHeaders(map[string]string{
			"X-API-Key":       testAPIKey,
			"Upload-Length":   strconv.Itoa(len(data)),
			"Upload-Metadata": "filename " + base64.StdEncoding.EncodeToString([]byte(name)),
		}), nil)
		loc := created.header.Get("Location")
		if created.status != http.StatusCreated || !strings.Contains(loc, "/files/") {
			t.Fatalf("tus create through %s: %v (Location %q), want 201", c.kind, created, loc)
		}
		loc = loc[strings.Index(loc, "/files/"):]
		id, _, _ := strings.Cut(strings.TrimPrefix(loc, "/files/"), ".")

		first := 512 << 10
		c.tusPatch(t, loc, 0, data[:first], http.StatusNoContent)
		head := mustSend(t, http.MethodHead, c.url()+loc, harness.TusHeaders(nil), nil)
		if head.status != http.StatusOK || head.header.Get("Upload-Offset") != strconv.Itoa(first) {
			t.Fatalf("HEAD %s through %s: %v (Upload-Offset %q), want 200 at %d", loc, c.kind, head, head.header.Get("Upload-Offset"), first)
		}
		// 3 MiB and more: over the balancer's limit of CHUNK_SIZE_MB + 1 = 2 MiB for parts.
		c.tusPatch(t, loc, int64(first), data[first:], http.StatusNoContent)

		// The last PATCH completes the upload; it answers when the file is delivered or
		// after COMPLETE_WAIT_SECONDS.
		var s harness.Status
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
			st := mustSend(t, http.MethodGet, c.url()+"/upload/"+id+"/status", key(), nil)
			s = harness.Status{}
			if err := json.Unmarshal(st.body, &s); err != nil || st.status != http.StatusOK {
				t.Fatalf("status of tus upload %s through %s: %v (%v), want 200", id, c.kind, st, err)
			}
			if s.Status == "complete" {
				break
			}
			if s.Status != "finalizing" || time.Now().After(deadline) {
				t.Fatalf("tus upload %s through %s is %q, want complete", id, c.kind, s.Status)
			}
		}
		checkDelivered(t, c.s3, c.bucket, id, harness.Str(s.FinalPath), data)
		owners[owner(t, id)]++
		last, lastID = loc, id
	}
	c.checkSpread(t, "tus", owners)

	for name, n := range c.nodes {
		if name == owner(t, lastID) {
			continue
		}
		a := mustSend(t, http.MethodHead, n.URL()+last, harness.TusHeaders(nil), nil)
		if a.status != http.StatusMisdirectedRequest {
			t.Errorf("HEAD %s straight to node %s (the upload is node %s's): %v, want 421", last, name, owner(t, lastID), a)
		}
		a = mustSend(t, http.MethodPatch, n.URL()+last, harness.TusHeaders(map[string]string{
			"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}), []byte("x"))
		if a.status != http.StatusMisdirectedRequest || a.field("code") != "wrong_node" {
			t.Errorf("PATCH %s straight to node %s: %v, want 421 wrong_node", last, name, a)
		}
		break
	}

	// Upload-Metadata of 12 KB passes the balancer (the node takes up to 16 KiB).
	long := mustSend(t, http.MethodPost, c.url()+"/files/", harness.TusHeaders(map[string]string{
		"X-API-Key": testAPIKey, "Upload-Length": "10",
		"Upload-Metadata": "filename " + base64.StdEncoding.EncodeToString([]byte("tus/long.bin")) +
			",note " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("n"), 9000)),
	}), nil)
	if long.status != http.StatusCreated {
		t.Errorf("tus create with 12 KB of Upload-Metadata through %s: %v, want 201", c.kind, long)
	}
	// A request nginx cannot parse gets the API's JSON, not nginx's page. (HAProxy answers
	// its own parse errors with its built-in page: its http-error rules do not reach them.)
	if status, body := c.raw(t, "GET /health HTTP/1.1\r\nHost: cluster\r\nBad Header: x\r\n\r\n"); status != http.StatusBadRequest ||
		(c.kind == lb.Nginx && !json.Valid(body)) {
		t.Errorf("a header name with a space through %s: %d %s, want 400 (with a JSON body from nginx)", c.kind, status, body)
	}

	// The balancer answers before the body: send only the head, then read the answer.
	up := initUpload(t, c.url(), "tus/"+c.kind+"/big-part.bin", 3*mib)
	status, body := c.raw(t, fmt.Sprintf("PUT /upload/%s/part/0 HTTP/1.1\r\nHost: cluster\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n",
		up.FileID, up.Parts[0].Token, 3*mib))
	var e struct{ Code string }
	if status != http.StatusRequestEntityTooLarge || json.Unmarshal(body, &e) != nil || e.Code != "request_too_large" {
		t.Errorf("a part PUT of 3 MiB through %s (limit 2 MiB): %d %s, want 413 request_too_large", c.kind, status, body)
	}
	mustSend(t, http.MethodDelete, c.url()+"/upload/"+up.FileID, key(), nil)
}

// raw writes head (a request written by hand, with no body) to the balancer and returns
// the status and body of its answer.
func (c *cluster) raw(t *testing.T, head string) (int, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(c.url(), "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q through %s: reading the answer: %v", strings.SplitN(head, "\r\n", 2)[0], c.kind, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// tusPatch sends b at offset to the tus URL loc through the balancer and asserts the status
// and, on success, the new offset.
func (c *cluster) tusPatch(t *testing.T, loc string, offset int64, b []byte, want int) {
	t.Helper()
	a := mustSend(t, http.MethodPatch, c.url()+loc, harness.TusHeaders(map[string]string{
		"Upload-Offset": strconv.FormatInt(offset, 10), "Content-Type": "application/offset+octet-stream"}), b)
	end := strconv.FormatInt(offset+int64(len(b)), 10)
	if a.status != want || (want == http.StatusNoContent && a.header.Get("Upload-Offset") != end) {
		t.Fatalf("PATCH %s at %d (%d bytes) through %s: %v (Upload-Offset %q), want %d at %s",
			loc, offset, len(b), c.kind, a, a.header.Get("Upload-Offset"), want, end)
	}
}
