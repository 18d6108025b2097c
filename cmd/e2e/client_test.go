package e2e

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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// response is an HTTP answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// code returns the "code" of a JSON error answer, "" if there is none.
func (r response) code() string {
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Code
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

type initPart struct {
	Part   int    `json:"part"`
	Token  string `json:"token"`
	Status string `json:"status"`
}

type initResponse struct {
	FileID     string          `json:"file_id"`
	TotalParts int             `json:"total_parts"`
	ChunkSize  int64           `json:"chunk_size"`
	Parts      []initPart      `json:"parts"`
	RawParts   json.RawMessage `json:"-"`
	ExpiresAt  string          `json:"expires_at"`
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
	ChunkSize                 int64        `json:"chunk_size"`
	TotalParts                int          `json:"total_parts"`
	UploadedParts             int          `json:"uploaded_parts"`
	ProgressPercent           float64      `json:"progress_percent"`
	UploadProgressPercent     float64      `json:"upload_progress_percent"`
	Status                    string       `json:"status"`
	Phase                     string       `json:"phase"`
	FinalizingProgressPercent float64      `json:"finalizing_progress_percent"`
	BytesDelivered            int64        `json:"bytes_delivered"`
	FinalPath                 string       `json:"final_path"`
	FinalizationError         string       `json:"finalization_error"`
	ChecksumSHA256            string       `json:"checksum_sha256"`
	StorageBackend            string       `json:"storage_backend"`
	CreatedAt                 string       `json:"created_at"`
	ExpiresAt                 string       `json:"expires_at"`
	DeliveryMode              string       `json:"delivery_mode"`
	DeliveredParts            int          `json:"delivered_parts"`
	DeliveryError             string       `json:"delivery_error"`
	Parts                     []statusPart `json:"parts"`
}

type completeResponse struct {
	FileID                    string  `json:"file_id"`
	Filename                  string  `json:"filename"`
	TotalSize                 int64   `json:"total_size"`
	Status                    string  `json:"status"`
	Phase                     string  `json:"phase"`
	FinalPath                 string  `json:"final_path"`
	StorageBackend            string  `json:"storage_backend"`
	ChecksumSHA256            string  `json:"checksum_sha256"`
	FinalizingProgressPercent float64 `json:"finalizing_progress_percent"`
}

// do sends one request and reads the whole answer. hdr values are set as
// given; a nil body sends no body.
func (s *server) do(tb testing.TB, method, path string, body io.Reader, hdr map[string]string) response {
	tb.Helper()
	req, err := http.NewRequest(method, s.base+path, body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	return s.send(tb, req)
}

func (s *server) send(tb testing.TB, req *http.Request) response {
	tb.Helper()
	r, err := s.trySend(req)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// trySend is send for goroutines other than the test's own.
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

// tryPutPart sends part n with a Content-Length body, for goroutines other
// than the test's own.
func (s *server) tryPutPart(id string, n int, token string, data []byte) (response, error) {
	req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/upload/%s/part/%d", s.base, id, n), bytes.NewReader(data))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	return s.trySend(req)
}

// api sends a management request with the right API key. A non-nil v is sent
// as a JSON body.
func (s *server) api(tb testing.TB, method, path string, v any) response {
	tb.Helper()
	hdr := map[string]string{"X-API-Key": testAPIKey}
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		body = bytes.NewReader(b)
		hdr["Content-Type"] = "application/json"
	}
	return s.do(tb, method, path, body, hdr)
}

// initUpload inits an upload and asserts a 200 with a well-formed answer.
func (s *server) initUpload(tb testing.TB, req map[string]any) initResponse {
	tb.Helper()
	r := s.api(tb, http.MethodPost, "/upload/init", req)
	if r.status != http.StatusOK {
		tb.Fatalf("POST /upload/init %v: got %v, want 200", req, r)
	}
	got := decode[initResponse](tb, r)
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(r.body, &raw)
	got.RawParts = raw["parts"]
	return got
}

// status fetches the status of an upload and asserts a 200.
func (s *server) status(tb testing.TB, id string) statusResponse {
	tb.Helper()
	r := s.api(tb, http.MethodGet, "/upload/"+id+"/status", nil)
	if r.status != http.StatusOK {
		tb.Fatalf("GET /upload/%s/status: got %v, want 200", id, r)
	}
	return decode[statusResponse](tb, r)
}

// putPart sends part n with a Content-Length body and the given token (none
// when empty) plus extra headers.
func (s *server) putPart(tb testing.TB, id string, n int, token string, data []byte, hdr map[string]string) response {
	tb.Helper()
	h := map[string]string{"Content-Type": "application/octet-stream"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	for k, v := range hdr {
		h[k] = v
	}
	return s.do(tb, http.MethodPut, fmt.Sprintf("/upload/%s/part/%d", id, n), bytes.NewReader(data), h)
}

// mustPutPart sends part n and asserts a 200 with the part's digest.
func (s *server) mustPutPart(tb testing.TB, id string, n int, token string, data []byte) partResponse {
	tb.Helper()
	r := s.putPart(tb, id, n, token, data, nil)
	if r.status != http.StatusOK {
		tb.Fatalf("PUT part %d of %s: got %v, want 200", n, id, r)
	}
	p := decode[partResponse](tb, r)
	if want := sha256Hex(data); p.ChecksumSHA256 != want || p.Status != "uploaded" || p.PartNumber != n || p.UploadID != id {
		tb.Errorf("PUT part %d of %s: got %+v, want upload_id %s, part_number %d, status uploaded, checksum_sha256 %s", n, id, p, id, n, want)
	}
	return p
}

func (s *server) complete(tb testing.TB, id string) response {
	tb.Helper()
	return s.api(tb, http.MethodPost, "/upload/"+id+"/complete", nil)
}

// completeAndWait calls complete and, on 202, polls the status until the
// upload is complete. It asserts the delivery succeeded.
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
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		st := s.status(tb, id)
		switch st.Status {
		case "complete":
			r := s.complete(tb, id)
			if r.status != http.StatusOK {
				tb.Fatalf("complete again after delivery: got %v, want 200", r)
			}
			return decode[completeResponse](tb, r)
		case "failed":
			tb.Fatalf("delivery failed: %+v", st)
		}
	}
	tb.Fatalf("upload %s not complete within %v", id, timeout)
	return completeResponse{}
}

// readObject reads a delivered object in full.
func (s *server) readObject(tb testing.TB, finalPath string) []byte {
	tb.Helper()
	rc, err := s.backend.open(tb, s, finalPath)
	if err != nil {
		tb.Fatalf("opening the delivered object %q: %v", finalPath, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		tb.Fatalf("reading the delivered object %q: %v", finalPath, err)
	}
	return b
}

// decode parses a JSON answer into T, failing the test on a syntax error.
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

// expectError asserts that r is the JSON error {error, code, status}.
func expectError(tb testing.TB, r response, status int, code string) {
	tb.Helper()
	expectErrorOneOf(tb, r, map[string]int{code: status})
}

// expectErrorOneOf asserts that r is a JSON error whose code is one of the
// keys of want, with that code's status. It returns the code observed.
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

// rawRequest is a request written byte by byte on a TCP connection, for the
// bodies net/http will not send: shorter than Content-Length, or no body at
// all after a large Content-Length.
type rawRequest struct {
	method, path  string
	header        map[string]string
	contentLength int64 // -1: no Content-Length header
	body          []byte
	closeWrite    bool // half-close the connection after the body
}

// raw sends rq on a fresh connection and reads the answer, which must arrive
// within 15 s.
func (s *server) raw(tb testing.TB, rq rawRequest) response {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("dial %s: %v", s.addr, err)
	}
	defer conn.Close()
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", rq.method, rq.path, s.addr)
	if rq.contentLength >= 0 {
		fmt.Fprintf(&head, "Content-Length: %d\r\n", rq.contentLength)
	}
	for k, v := range rq.header {
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	head.WriteString("\r\n")
	if _, err := io.WriteString(conn, head.String()); err != nil {
		tb.Fatalf("writing the request head: %v", err)
	}
	go func() {
		// The server may answer and close before it read everything: write
		// errors are expected and ignored.
		if len(rq.body) > 0 {
			if _, err := conn.Write(rq.body); err != nil {
				return
			}
		}
		if rq.closeWrite {
			_ = conn.(*net.TCPConn).CloseWrite()
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatalf("%s %s (Content-Length %d, %d body bytes sent): no answer: %v",
			rq.method, rq.path, rq.contentLength, len(rq.body), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body) // a reset after the body is not our concern
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// partHeaders returns the headers of a part upload with the given token.
func partHeaders(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/octet-stream"}
}

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

// partClaims are the claims of a part token.
func partClaims(uploadID string, part int, expectedSize int64, exp time.Time) map[string]any {
	return map[string]any{
		"upload_id":     uploadID,
		"part_number":   part,
		"expected_size": expectedSize,
		"exp":           exp.Unix(),
	}
}

// forgeToken signs a part token with the host's secret.
func forgeToken(uploadID string, part int, expectedSize int64, exp time.Time) string {
	return signToken(testJWTSecret, "HS256", partClaims(uploadID, part, expectedSize, exp))
}

// checkToken asserts that tok is an HS256 JWT signed with the host's secret
// with exactly the claims upload_id, part_number, expected_size and exp.
func checkToken(tb testing.TB, tok, uploadID string, part int, expectedSize int64, exp time.Time) {
	tb.Helper()
	segs := strings.Split(tok, ".")
	if len(segs) != 3 {
		tb.Errorf("part %d: token %q is not a JWT", part, tok)
		return
	}
	var hdr map[string]any
	if b, err := base64.RawURLEncoding.DecodeString(segs[0]); err != nil || json.Unmarshal(b, &hdr) != nil {
		tb.Errorf("part %d: token header %q does not decode", part, segs[0])
		return
	}
	if hdr["alg"] != "HS256" {
		tb.Errorf("part %d: token alg = %v, want HS256", part, hdr["alg"])
	}
	m := hmac.New(sha256.New, []byte(testJWTSecret))
	m.Write([]byte(segs[0] + "." + segs[1]))
	if sig, err := base64.RawURLEncoding.DecodeString(segs[2]); err != nil || !hmac.Equal(sig, m.Sum(nil)) {
		tb.Errorf("part %d: token signature does not verify with JWT_SECRET", part)
	}
	var claims map[string]any
	b, err := base64.RawURLEncoding.DecodeString(segs[1])
	if err == nil {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		err = d.Decode(&claims)
	}
	if err != nil {
		tb.Errorf("part %d: token payload does not decode: %v", part, err)
		return
	}
	keys := make([]string, 0, len(claims))
	for k := range claims {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"exp", "expected_size", "part_number", "upload_id"}; !slices.Equal(keys, want) {
		tb.Errorf("part %d: token claims %v, want exactly %v", part, keys, want)
	}
	num := func(k string) int64 {
		n, ok := claims[k].(json.Number)
		if !ok {
			tb.Errorf("part %d: claim %s = %#v, want an integer", part, k, claims[k])
			return -1
		}
		v, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			tb.Errorf("part %d: claim %s = %s, want an integer", part, k, n)
		}
		return v
	}
	if claims["upload_id"] != uploadID {
		tb.Errorf("part %d: claim upload_id = %v, want %s", part, claims["upload_id"], uploadID)
	}
	if got := num("part_number"); got != int64(part) {
		tb.Errorf("part %d: claim part_number = %d", part, got)
	}
	if got := num("expected_size"); got != expectedSize {
		tb.Errorf("part %d: claim expected_size = %d, want %d", part, got, expectedSize)
	}
	if got := num("exp"); got < exp.Unix()-1 || got > exp.Unix()+1 {
		tb.Errorf("part %d: claim exp = %d, want the upload's expires_at %d", part, got, exp.Unix())
	}
}

var rfc3339Z = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$`)

// parseTime asserts s is RFC 3339 in UTC with a Z suffix and whole seconds.
func parseTime(tb testing.TB, field, s string) time.Time {
	tb.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil || !rfc3339Z.MatchString(s) {
		tb.Errorf("%s = %q, want RFC 3339 UTC with Z and whole seconds", field, s)
	}
	return ts
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8(seedBytes(seed))
	_, _ = r.Read(b)
	return b
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// partData cuts data into parts of chunk bytes (the last one shorter).
func partData(data []byte, chunk int) [][]byte {
	var parts [][]byte
	for off := 0; off < len(data); off += chunk {
		parts = append(parts, data[off:min(off+chunk, len(data))])
	}
	return parts
}

// chunkedBody hides a reader's length from net/http so that the body is
// sent with Transfer-Encoding: chunked.
type chunkedBody struct{ io.Reader }
