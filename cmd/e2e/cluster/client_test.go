package cluster

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

const (
	testAPIKey    = "cluster-api-key-0123456789abcdef"
	testJWTSecret = "cluster-jwt-secret-0123456789abcdef-0123456789abcdef"
	mib           = 1 << 20
)

var httpClient = &http.Client{Timeout: 2 * time.Minute}

// answer is an HTTP response, read whole (they are small JSON bodies).
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, bytes.TrimSpace(a.body)) }

// field returns a top-level string field of the JSON body ("" if absent or not JSON).
func (a answer) field(name string) string {
	var m map[string]any
	if json.Unmarshal(a.body, &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}

// send makes one request. body may be nil; size is its Content-Length (-1: unknown).
func send(method, url string, header map[string]string, body io.Reader, size int64) (answer, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func key() map[string]string { return map[string]string{"X-API-Key": testAPIKey} }

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/octet-stream"}
}

// mustSend is send that fails the test on a transport error.
func mustSend(tb testing.TB, method, url string, header map[string]string, body []byte) answer {
	tb.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	a, err := send(method, url, header, r, int64(len(body)))
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	return a
}

// initUpload creates an upload through base and asserts 200.
func initUpload(tb testing.TB, base, filename string, size int64) harness.InitResponse {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"filename": filename, "total_size": size})
	h := key()
	h["Content-Type"] = "application/json"
	a := mustSend(tb, http.MethodPost, base+"/upload/init", h, body)
	if a.status != http.StatusOK {
		tb.Fatalf("POST %s/upload/init: %v, want 200", base, a)
	}
	var up harness.InitResponse
	if err := json.Unmarshal(a.body, &up); err != nil || up.FileID == "" || len(up.Parts) != up.TotalParts {
		tb.Fatalf("init answer %v: %v", a, err)
	}
	return up
}

// uuidRE is a canonical version-4 UUID, as strict client validators check.
var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// owner is the node an upload id names by the documented layout (docs/deploy.md): its last
// group is the NODE_ID in ASCII, padded on the left with 00 bytes. Computed here, not by
// the server's code.
func owner(tb testing.TB, id string) string {
	tb.Helper()
	if !uuidRE.MatchString(id) {
		tb.Fatalf("file_id %q is not a canonical version-4 UUID", id)
	}
	b, err := hex.DecodeString(id[24:])
	if err != nil {
		tb.Fatalf("file_id %q: %v", id, err)
	}
	return string(bytes.TrimLeft(b, "\x00"))
}

// putPart sends part n of up (data is the whole file).
func putPart(base string, up harness.InitResponse, n int, data []byte) (answer, error) {
	part := data[int64(n)*up.ChunkSize : min(int64(n+1)*up.ChunkSize, int64(len(data)))]
	return send(http.MethodPut, base+"/upload/"+up.FileID+"/part/"+strconv.Itoa(n), bearer(up.Parts[n].Token),
		bytes.NewReader(part), int64(len(part)))
}

// mustPutPart is putPart asserting 200 "uploaded".
func mustPutPart(tb testing.TB, base string, up harness.InitResponse, n int, data []byte) {
	tb.Helper()
	a, err := putPart(base, up, n, data)
	if err != nil {
		tb.Fatalf("PUT part %d of %s: %v", n, up.FileID, err)
	}
	if a.status != http.StatusOK || a.field("status") != "uploaded" {
		tb.Fatalf("PUT part %d of %s: %v, want 200 uploaded", n, up.FileID, a)
	}
}

// complete asks for the delivery through base and waits for it (202: polls the status);
// it returns final_path.
func complete(tb testing.TB, base, id string) string {
	tb.Helper()
	a := mustSend(tb, http.MethodPost, base+"/upload/"+id+"/complete", key(), nil)
	deadline := time.Now().Add(2 * time.Minute)
	for a.status == http.StatusAccepted && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		a = mustSend(tb, http.MethodGet, base+"/upload/"+id+"/status?include_parts=false", key(), nil)
		if a.status == http.StatusOK && a.field("status") != "complete" {
			a.status = http.StatusAccepted
		}
	}
	if a.status != http.StatusOK || a.field("final_path") == "" {
		tb.Fatalf("complete %s: %v, want 200 with final_path", id, a)
	}
	return a.field("final_path")
}

// partStates returns the status of every part ("uploaded", "pending") of upload id.
func partStates(tb testing.TB, base, id string) []string {
	tb.Helper()
	a := mustSend(tb, http.MethodGet, base+"/upload/"+id+"/status", key(), nil)
	if a.status != http.StatusOK {
		tb.Fatalf("status of %s: %v", id, a)
	}
	var st struct {
		Parts []struct {
			Status string `json:"status"`
		} `json:"parts"`
	}
	if err := json.Unmarshal(a.body, &st); err != nil {
		tb.Fatal(err)
	}
	out := make([]string, len(st.Parts))
	for i, p := range st.Parts {
		out[i] = p.Status
	}
	return out
}

// randomData returns n pseudo-random bytes from seed.
func randomData(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 7})
	_, _ = r.Read(b)
	return b
}

// metric returns the value of the sample name{node="<node>"} (without other labels) in a
// node's /metrics.
func metric(tb testing.TB, nodeURL, node, name string) float64 {
	tb.Helper()
	a := mustSend(tb, http.MethodGet, nodeURL+"/metrics", nil, nil)
	want := name + `{node="` + node + `"} `
	for _, line := range strings.Split(string(a.body), "\n") {
		if v, ok := strings.CutPrefix(line, want); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	tb.Fatalf("no sample %s in the /metrics of node %s:\n%s", want, node, a.body)
	return 0
}
