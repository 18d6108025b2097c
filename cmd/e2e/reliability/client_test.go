package reliability

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// response is an HTTP answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	b := bytes.TrimSpace(r.body)
	if len(b) > 400 {
		b = append(b[:400:400], "..."...)
	}
	return fmt.Sprintf("%d %s", r.status, b)
}

type initPart struct {
	Part   int    `json:"part"`
	Token  string `json:"token"`
	Status string `json:"status"`
}

type initResponse struct {
	FileID     string     `json:"file_id"`
	TotalParts int        `json:"total_parts"`
	ChunkSize  int64      `json:"chunk_size"`
	Parts      []initPart `json:"parts"`
	ExpiresAt  string     `json:"expires_at"`
}

type partResponse struct {
	UploadID       string `json:"upload_id"`
	PartNumber     int    `json:"part_number"`
	Status         string `json:"status"`
	ChecksumSHA256 string `json:"checksum_sha256"`
	UploadedParts  int    `json:"uploaded_parts"`
	TotalParts     int    `json:"total_parts"`
}

type statusPart struct {
	Part           int    `json:"part"`
	Status         string `json:"status"`
	ChecksumSHA256 string `json:"checksum_sha256"`
	Delivered      bool   `json:"delivered"`
	Message        string `json:"message"`
}

type statusResponse struct {
	FileID                    string       `json:"file_id"`
	Filename                  string       `json:"filename"`
	Path                      string       `json:"path"`
	TotalSize                 int64        `json:"total_size"`
	TotalParts                int          `json:"total_parts"`
	UploadedParts             int          `json:"uploaded_parts"`
	Status                    string       `json:"status"`
	Phase                     string       `json:"phase"`
	FinalizingProgressPercent float64      `json:"finalizing_progress_percent"`
	BytesDelivered            int64        `json:"bytes_delivered"`
	FinalPath                 string       `json:"final_path"`
	FinalizationError         string       `json:"finalization_error"`
	ChecksumSHA256            string       `json:"checksum_sha256"`
	Parts                     []statusPart `json:"parts"`
}

type completeResponse struct {
	FileID         string `json:"file_id"`
	TotalSize      int64  `json:"total_size"`
	Status         string `json:"status"`
	Phase          string `json:"phase"`
	FinalPath      string `json:"final_path"`
	ChecksumSHA256 string `json:"checksum_sha256"`
}

type healthResponse struct {
	Status  string `json:"status"`
	Storage *struct {
		BackendType string  `json:"backend_type"`
		Status      string  `json:"status"`
		Message     *string `json:"message"`
	} `json:"storage"`
}

// trySend sends req and reads the whole answer; for any goroutine.
func (s *server) trySend(req *http.Request) (response, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: reading the answer: %w", req.Method, req.URL.Path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// tryDo sends one request; hdr values are set as given.
func (s *server) tryDo(method, path string, body io.Reader, hdr map[string]string) (response, error) {
	req, err := http.NewRequest(method, s.url(path), body)
	if err != nil {
		return response{}, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return s.trySend(req)
}

func (s *server) do(tb testing.TB, method, path string, body io.Reader, hdr map[string]string) response {
	tb.Helper()
	r, err := s.tryDo(method, path, body, hdr)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// api sends a management request with the API key; a non-nil v is sent as JSON.
func (s *server) api(tb testing.TB, method, path string, v any) response {
	tb.Helper()
	r, err := s.tryAPI(method, path, v)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func (s *server) tryAPI(method, path string, v any) (response, error) {
	hdr := map[string]string{"X-API-Key": testAPIKey}
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return response{}, err
		}
		body = bytes.NewReader(b)
		hdr["Content-Type"] = "application/json"
	}
	return s.tryDo(method, path, body, hdr)
}

func (s *server) initUpload(tb testing.TB, req map[string]any) initResponse {
	tb.Helper()
	r := s.api(tb, http.MethodPost, "/upload/init", req)
	if r.status != http.StatusOK {
		tb.Fatalf("POST /upload/init %v: got %v, want 200", req, r)
	}
	return decode[initResponse](tb, r)
}

func (s *server) status(tb testing.TB, id string) statusResponse {
	tb.Helper()
	r := s.api(tb, http.MethodGet, "/upload/"+id+"/status", nil)
	if r.status != http.StatusOK {
		tb.Fatalf("GET /upload/%s/status: got %v, want 200", id, r)
	}
	return decode[statusResponse](tb, r)
}

func (s *server) tryStatus(id string) (statusResponse, error) {
	r, err := s.tryAPI(http.MethodGet, "/upload/"+id+"/status?include_parts=false", nil)
	if err != nil {
		return statusResponse{}, err
	}
	if r.status != http.StatusOK {
		return statusResponse{}, fmt.Errorf("GET status: %v", r)
	}
	var st statusResponse
	err = json.Unmarshal(r.body, &st)
	return st, err
}

func (s *server) health(tb testing.TB) response {
	tb.Helper()
	return s.do(tb, http.MethodGet, "/health", nil, nil)
}

// waitHealth waits until GET /health answers want.
func (s *server) waitHealth(tb testing.TB, want int, timeout time.Duration) response {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var last response
	for time.Now().Before(deadline) {
		last = s.health(tb)
		if last.status == want {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("GET /health not %d within %v: last %v", want, timeout, last)
	return last
}

// tryPutPart sends part n with a Content-Length body.
func (s *server) tryPutPart(id string, n int, token string, data []byte) (response, error) {
	return s.tryDo(http.MethodPut, fmt.Sprintf("/upload/%s/part/%d", id, n), bytes.NewReader(data), partHeaders(token))
}

// mustPutPart sends part n and asserts a 200 with the part's digest.
func (s *server) mustPutPart(tb testing.TB, id string, n int, token string, data []byte) partResponse {
	tb.Helper()
	r, err := s.tryPutPart(id, n, token, data)
	if err != nil {
		tb.Fatal(err)
	}
	if r.status != http.StatusOK {
		tb.Fatalf("PUT part %d of %s: got %v, want 200", n, id, r)
	}
	p := decode[partResponse](tb, r)
	if want := sha256Hex(data); p.ChecksumSHA256 != want || p.Status != "uploaded" || p.PartNumber != n {
		tb.Errorf("PUT part %d of %s: got %+v, want status uploaded, checksum_sha256 %s", n, id, p, want)
	}
	return p
}

// uploadParts sends parts with up to parallel requests at once, asserting 200 for each.
func (s *server) uploadParts(tb testing.TB, up initResponse, parts [][]byte, parallel int) {
	tb.Helper()
	if len(parts) != up.TotalParts {
		tb.Fatalf("%d parts to send, the upload has %d", len(parts), up.TotalParts)
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for n, p := range parts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := s.tryPutPart(up.FileID, n, up.Parts[n].Token, p)
			if err != nil {
				tb.Errorf("PUT part %d: %v", n, err)
			} else if r.status != http.StatusOK {
				tb.Errorf("PUT part %d: got %v, want 200", n, r)
			}
		})
	}
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
}

func (s *server) complete(tb testing.TB, id string) response {
	tb.Helper()
	return s.api(tb, http.MethodPost, "/upload/"+id+"/complete", nil)
}

// completeAsync calls complete in the background.
func (s *server) completeAsync(id string) <-chan timedResponse {
	c := make(chan timedResponse, 1)
	go func() {
		start := time.Now()
		r, err := s.tryAPI(http.MethodPost, "/upload/"+id+"/complete", nil)
		c <- timedResponse{r, err, time.Now(), time.Since(start)}
	}()
	return c
}

type timedResponse struct {
	r    response
	err  error
	at   time.Time
	took time.Duration
}

// completeAndWait calls complete and, on 202, polls the status until the upload is
// complete. It asserts the delivery succeeded.
func (s *server) completeAndWait(tb testing.TB, id string, timeout time.Duration) completeResponse {
	tb.Helper()
	r := s.complete(tb, id)
	switch r.status {
	case http.StatusOK:
		return decode[completeResponse](tb, r)
	case http.StatusAccepted:
	default:
		tb.Fatalf("POST /upload/%s/complete: got %v, want 200 or 202", id, r)
	}
	return s.waitComplete(tb, id, timeout)
}

// waitComplete polls the status until the upload is complete (without calling complete
// before), then calls complete, which must answer 200.
func (s *server) waitComplete(tb testing.TB, id string, timeout time.Duration) completeResponse {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st := s.status(tb, id)
		switch st.Status {
		case "complete":
			r := s.complete(tb, id)
			if r.status != http.StatusOK {
				tb.Fatalf("complete after delivery: got %v, want 200", r)
			}
			return decode[completeResponse](tb, r)
		case "failed":
			tb.Fatalf("delivery failed: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("upload %s not complete within %v", id, timeout)
	return completeResponse{}
}

func decode[T any](tb testing.TB, r response) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		tb.Fatalf("decoding the answer %v: %v", r, err)
	}
	return v
}

// errorBody is the shape of every error: {"error", "code", "status"}.
type errorBody struct {
	Error  *string `json:"error"`
	Code   *string `json:"code"`
	Status *int    `json:"status"`
}

func expectError(tb testing.TB, r response, status int, code string) {
	tb.Helper()
	expectErrorOneOf(tb, r, map[string]int{code: status})
}

// expectErrorOneOf asserts that r is a JSON error whose code is one of the keys of want,
// with that code's status, and returns the code.
func expectErrorOneOf(tb testing.TB, r response, want map[string]int) string {
	tb.Helper()
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == nil || e.Code == nil || e.Status == nil {
		tb.Errorf("got %v (Content-Type %q), want a JSON error {error, code, status} with one of %v",
			r, r.header.Get("Content-Type"), want)
		return ""
	}
	wantStatus, ok := want[*e.Code]
	switch {
	case !ok:
		tb.Errorf("got %v, want code one of %v", r, want)
	case r.status != wantStatus:
		tb.Errorf("got HTTP %d with code %q, want HTTP %d: %v", r.status, *e.Code, wantStatus, r)
	}
	if *e.Status != r.status {
		tb.Errorf("body status %d differs from the HTTP status %d: %v", *e.Status, r.status, r)
	}
	if strings.TrimSpace(*e.Error) == "" {
		tb.Errorf("empty error message: %v", r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("error Content-Type = %q, want application/json", ct)
	}
	return *e.Code
}

func partHeaders(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/octet-stream"}
}

// rawConn is a request written by hand on a TCP connection: for bodies sent slowly, cut
// off, or that net/http will not send.
type rawConn struct {
	conn net.Conn
	br   *bufio.Reader
}

// openRaw connects to the current host and writes a request head. contentLength < 0 sends
// no Content-Length header.
func (s *server) openRaw(tb testing.TB, method, path string, hdr map[string]string, contentLength int64) *rawConn {
	tb.Helper()
	addr := s.hostAddr()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path, addr)
	if contentLength >= 0 {
		fmt.Fprintf(&head, "Content-Length: %d\r\n", contentLength)
	}
	for k, v := range hdr {
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(conn, head.String()); err != nil {
		conn.Close()
		tb.Fatalf("writing the request head: %v", err)
	}
	return &rawConn{conn: conn, br: bufio.NewReader(conn)}
}

// openPart starts a part upload with a Content-Length of size and sends no body yet.
func (s *server) openPart(tb testing.TB, id string, n int, token string, size int64) *rawConn {
	tb.Helper()
	return s.openRaw(tb, http.MethodPut, fmt.Sprintf("/upload/%s/part/%d", id, n), partHeaders(token), size)
}

func (c *rawConn) write(b []byte) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := c.conn.Write(b)
	return err
}

// writeSlowly writes b in pieces spread over d.
func (c *rawConn) writeSlowly(b []byte, pieces int, d time.Duration) error {
	step := (len(b) + pieces - 1) / pieces
	for off := 0; off < len(b); off += step {
		if err := c.write(b[off:min(off+step, len(b))]); err != nil {
			return err
		}
		time.Sleep(d / time.Duration(pieces))
	}
	return nil
}

// response reads the answer, which must arrive within timeout.
func (c *rawConn) response(timeout time.Duration) (response, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body) // a reset after the body is not our concern
	return response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

func (c *rawConn) close() { c.conn.Close() }

// signToken encodes a JWT signed with alg ("HS256", "HS512" or "none").
func signToken(secret, alg string, claims map[string]any) string {
	enc := base64.RawURLEncoding
	hdr, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	unsigned := enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload)
	var h func() hash.Hash
	switch alg {
	case "HS256":
		h = sha256.New
	case "HS512":
		h = sha512.New
	case "none":
		return unsigned + "."
	default:
		panic("signToken: unsupported alg " + alg)
	}
	m := hmac.New(h, []byte(secret))
	m.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(m.Sum(nil))
}

func partClaims(uploadID string, part int, expectedSize int64, exp time.Time) map[string]any {
	return map[string]any{"upload_id": uploadID, "part_number": part, "expected_size": expectedSize, "exp": exp.Unix()}
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	r := rand.NewChaCha8(s)
	_, _ = r.Read(b)
	return b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// fileSHA256 hashes a file; "" when it cannot be read.
func fileSHA256(path string) (string, int64) {
	f, err := os.Open(path)
	if err != nil {
		return "", -1
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", -1
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// partData cuts data into parts of chunk bytes (the last one shorter).
func partData(data []byte, chunk int) [][]byte {
	var parts [][]byte
	for off := 0; off < len(data); off += chunk {
		parts = append(parts, data[off:min(off+chunk, len(data))])
	}
	return parts
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func runtimeCPUs() int { return runtime.NumCPU() }
