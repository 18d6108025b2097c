package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Response is an HTTP answer read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Code returns the "code" of a JSON error answer, "" if there is none.
func (r Response) Code() string {
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Code
}

func (r Response) String() string {
	b := bytes.TrimSpace(r.Body)
	if len(b) > 2000 {
		b = append(b[:2000:2000], "..."...)
	}
	return fmt.Sprintf("%d %s", r.Status, b)
}

// TrySend sends req with h.Client and reads the whole answer; for any goroutine.
func (h *Host) TrySend(req *http.Request) (Response, error) {
	return Send(h.Client, req)
}

// Send sends req with c and reads the whole answer.
func Send(c *http.Client, req *http.Request) (Response, error) {
	resp, err := c.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: reading the answer: %w", req.Method, req.URL.Path, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// Send is TrySend that fails the test on a transport error.
func (h *Host) Send(tb testing.TB, req *http.Request) Response {
	tb.Helper()
	r, err := h.TrySend(req)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// TryDo sends one request to the current process; hdr values are set as given ("Host" sets
// the request's Host); a nil body sends no body.
func (h *Host) TryDo(method, path string, body io.Reader, hdr map[string]string) (Response, error) {
	req, err := http.NewRequest(method, h.URL(path), body)
	if err != nil {
		return Response{}, err
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	return h.TrySend(req)
}

// Do is TryDo that fails the test on a transport error.
func (h *Host) Do(tb testing.TB, method, path string, body io.Reader, hdr map[string]string) Response {
	tb.Helper()
	r, err := h.TryDo(method, path, body, hdr)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// TryAPI sends a management request with the API key; a non-nil v is sent as a JSON body.
func (h *Host) TryAPI(method, path string, v any) (Response, error) {
	hdr := map[string]string{"X-API-Key": h.Env["API_KEY"]}
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return Response{}, err
		}
		body = bytes.NewReader(b)
		hdr["Content-Type"] = "application/json"
	}
	return h.TryDo(method, path, body, hdr)
}

// API is TryAPI that fails the test on a transport error.
func (h *Host) API(tb testing.TB, method, path string, v any) Response {
	tb.Helper()
	r, err := h.TryAPI(method, path, v)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// InitUpload inits an upload and asserts a 200 with a JSON answer.
func (h *Host) InitUpload(tb testing.TB, req map[string]any) InitResponse {
	tb.Helper()
	r := h.API(tb, http.MethodPost, "/upload/init", req)
	if r.Status != http.StatusOK {
		tb.Fatalf("POST /upload/init %v: got %v, want 200", req, r)
	}
	return Decode[InitResponse](tb, r)
}

// Status fetches the status of an upload (with its parts) and asserts a 200.
func (h *Host) Status(tb testing.TB, id string) Status {
	tb.Helper()
	r := h.API(tb, http.MethodGet, "/upload/"+id+"/status", nil)
	if r.Status != http.StatusOK {
		tb.Fatalf("GET /upload/%s/status: got %v, want 200", id, r)
	}
	return Decode[Status](tb, r)
}

// TryStatus fetches the status of an upload without its parts; for any goroutine.
func (h *Host) TryStatus(id string) (Status, error) {
	r, err := h.TryAPI(http.MethodGet, "/upload/"+id+"/status?include_parts=false", nil)
	if err != nil {
		return Status{}, err
	}
	if r.Status != http.StatusOK {
		return Status{}, fmt.Errorf("GET status: %v", r)
	}
	var st Status
	err = json.Unmarshal(r.Body, &st)
	return st, err
}

// Health sends GET /health.
func (h *Host) Health(tb testing.TB) Response {
	tb.Helper()
	return h.Do(tb, http.MethodGet, "/health", nil, nil)
}

// WaitHealth waits until GET /health answers want, and returns that answer.
func (h *Host) WaitHealth(tb testing.TB, want int, timeout time.Duration) Response {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var last Response
	for time.Now().Before(deadline) {
		last = h.Health(tb)
		if last.Status == want {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("GET /health not %d within %v: last %v", want, timeout, last)
	return last
}

// PartPath is the path of part n of upload id.
func PartPath(id string, n int) string { return fmt.Sprintf("/upload/%s/part/%d", id, n) }

// PartHeaders returns the headers of a part upload with the given token.
func PartHeaders(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/octet-stream"}
}

// TryPutPart sends part n with a Content-Length body; for any goroutine.
func (h *Host) TryPutPart(id string, n int, token string, data []byte) (Response, error) {
	return h.TryDo(http.MethodPut, PartPath(id, n), bytes.NewReader(data), PartHeaders(token))
}

// PutPart sends part n with a Content-Length body and the given token (none when empty)
// plus extra headers.
func (h *Host) PutPart(tb testing.TB, id string, n int, token string, data []byte, hdr map[string]string) Response {
	tb.Helper()
	all := map[string]string{"Content-Type": "application/octet-stream"}
	if token != "" {
		all["Authorization"] = "Bearer " + token
	}
	for k, v := range hdr {
		all[k] = v
	}
	return h.Do(tb, http.MethodPut, PartPath(id, n), bytes.NewReader(data), all)
}

// MustPutPart sends part n and asserts a 200 with the part's number, upload and digest.
func (h *Host) MustPutPart(tb testing.TB, id string, n int, token string, data []byte) PartResponse {
	tb.Helper()
	r := h.PutPart(tb, id, n, token, data, nil)
	if r.Status != http.StatusOK {
		tb.Fatalf("PUT part %d of %s: got %v, want 200", n, id, r)
	}
	p := Decode[PartResponse](tb, r)
	if want := SHA256Hex(data); p.ChecksumSHA256 != want || p.Status != "uploaded" || p.PartNumber != n || p.UploadID != id {
		tb.Errorf("PUT part %d of %s: got %+v, want upload_id %s, part_number %d, status uploaded, checksum_sha256 %s", n, id, p, id, n, want)
	}
	return p
}

// UploadParts sends parts with up to parallel requests at once, asserting 200 for each.
func (h *Host) UploadParts(tb testing.TB, up InitResponse, parts [][]byte, parallel int) {
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
			r, err := h.TryPutPart(up.FileID, n, up.Parts[n].Token, p)
			if err != nil {
				tb.Errorf("PUT part %d: %v", n, err)
			} else if r.Status != http.StatusOK {
				tb.Errorf("PUT part %d: got %v, want 200", n, r)
			}
		})
	}
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
}

// Complete sends POST /upload/{id}/complete.
func (h *Host) Complete(tb testing.TB, id string) Response {
	tb.Helper()
	return h.API(tb, http.MethodPost, "/upload/"+id+"/complete", nil)
}

// TimedResponse is an answer received in the background, with when it arrived and how long
// it took.
type TimedResponse struct {
	R    Response
	Err  error
	At   time.Time
	Took time.Duration
}

// CompleteAsync calls complete in the background.
func (h *Host) CompleteAsync(id string) <-chan TimedResponse {
	c := make(chan TimedResponse, 1)
	go func() {
		start := time.Now()
		r, err := h.TryAPI(http.MethodPost, "/upload/"+id+"/complete", nil)
		c <- TimedResponse{r, err, time.Now(), time.Since(start)}
	}()
	return c
}

// CompleteAndWait calls complete and, on 202, polls the status until the upload is
// complete. It asserts the delivery succeeded.
func (h *Host) CompleteAndWait(tb testing.TB, id string, timeout time.Duration) CompleteResponse {
	tb.Helper()
	r := h.Complete(tb, id)
	switch r.Status {
	case http.StatusOK:
		return Decode[CompleteResponse](tb, r)
	case http.StatusAccepted:
	default:
		tb.Fatalf("POST /upload/%s/complete: got %v, want 200 or 202", id, r)
	}
	return h.WaitComplete(tb, id, timeout)
}

// WaitComplete polls the status until the upload is complete (without calling complete
// before), then calls complete, which must answer 200.
func (h *Host) WaitComplete(tb testing.TB, id string, timeout time.Duration) CompleteResponse {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st := h.Status(tb, id)
		switch st.Status {
		case "complete":
			r := h.Complete(tb, id)
			if r.Status != http.StatusOK {
				tb.Fatalf("complete after delivery: got %v, want 200", r)
			}
			return Decode[CompleteResponse](tb, r)
		case "failed":
			tb.Fatalf("delivery failed: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("upload %s not complete within %v", id, timeout)
	return CompleteResponse{}
}

// Decode parses a JSON answer into T, failing the test on a syntax error.
func Decode[T any](tb testing.TB, r Response) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		tb.Fatalf("decoding the answer %v: %v", r, err)
	}
	return v
}

// ExpectError asserts that r is the JSON error {error, code, status} with that status and
// code.
func ExpectError(tb testing.TB, r Response, status int, code string) {
	tb.Helper()
	ExpectErrorOneOf(tb, r, map[string]int{code: status})
}

// ExpectErrorOneOf asserts that r is a JSON error whose code is one of the keys of want, with
// that code's status, a non-empty message, the HTTP status repeated in the body and a JSON
// Content-Type. It returns the code observed.
func ExpectErrorOneOf(tb testing.TB, r Response, want map[string]int) string {
	tb.Helper()
	// Pointers, to tell a missing member from an empty one.
	var e struct {
		Error  *string `json:"error"`
		Code   *string `json:"code"`
		Status *int    `json:"status"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil || e.Error == nil || e.Code == nil || e.Status == nil {
		tb.Errorf("got %v (Content-Type %q), want a JSON error {error, code, status} with one of %v",
			r, r.Header.Get("Content-Type"), want)
		return ""
	}
	wantStatus, ok := want[*e.Code]
	switch {
	case !ok:
		tb.Errorf("got %v, want code one of %v", r, want)
	case r.Status != wantStatus:
		tb.Errorf("got HTTP %d with code %q, want HTTP %d: %v", r.Status, *e.Code, wantStatus, r)
	}
	if *e.Status != r.Status {
		tb.Errorf("body status %d differs from the HTTP status %d: %v", *e.Status, r.Status, r)
	}
	if strings.TrimSpace(*e.Error) == "" {
		tb.Errorf("empty error message: %v", r)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("error Content-Type = %q, want application/json", ct)
	}
	return *e.Code
}

// RawConn is a request written by hand on a TCP connection: for bodies sent slowly, cut
// off, shorter than their Content-Length, or that net/http will not send.
type RawConn struct {
	Conn net.Conn
	br   *bufio.Reader
}

// OpenRaw connects to the current process and writes a request head (with Host and
// Connection: close). contentLength < 0 sends no Content-Length header.
func (h *Host) OpenRaw(tb testing.TB, method, path string, hdr map[string]string, contentLength int64) *RawConn {
	tb.Helper()
	addr := h.Addr()
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
	return &RawConn{Conn: conn, br: bufio.NewReader(conn)}
}

// OpenPart starts a part upload with a Content-Length of size and sends no body yet.
func (h *Host) OpenPart(tb testing.TB, id string, n int, token string, size int64) *RawConn {
	tb.Helper()
	return h.OpenRaw(tb, http.MethodPut, PartPath(id, n), PartHeaders(token), size)
}

// Write writes b within 30 s.
func (c *RawConn) Write(b []byte) error {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := c.Conn.Write(b)
	return err
}

// WriteSlowly writes b in pieces spread over d.
func (c *RawConn) WriteSlowly(b []byte, pieces int, d time.Duration) error {
	step := (len(b) + pieces - 1) / pieces
	for off := 0; off < len(b); off += step {
		if err := c.Write(b[off:min(off+step, len(b))]); err != nil {
			return err
		}
		time.Sleep(d / time.Duration(pieces))
	}
	return nil
}

// Response reads the answer, which must arrive within timeout.
func (c *RawConn) Response(timeout time.Duration) (Response, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body) // a reset after the body is not our concern
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// Close closes the connection.
func (c *RawConn) Close() { c.Conn.Close() }

// RawRequest is a whole request for Raw.
type RawRequest struct {
	Method, Path  string
	Header        map[string]string
	ContentLength int64 // -1: no Content-Length header
	Body          []byte
	CloseWrite    bool // half-close the connection after the body
}

// Raw sends rq on a fresh connection and reads the answer, which must arrive within 15 s.
// The body is written in the background: the server may answer and close before it read
// everything, so write errors are ignored.
func (h *Host) Raw(tb testing.TB, rq RawRequest) Response {
	tb.Helper()
	c := h.OpenRaw(tb, rq.Method, rq.Path, rq.Header, rq.ContentLength)
	defer c.Close()
	go func() {
		if len(rq.Body) > 0 {
			if _, err := c.Conn.Write(rq.Body); err != nil {
				return
			}
		}
		if rq.CloseWrite {
			_ = c.Conn.(*net.TCPConn).CloseWrite()
		}
	}()
	r, err := c.Response(15 * time.Second)
	if err != nil {
		tb.Fatalf("%s %s (Content-Length %d, %d body bytes sent): no answer: %v",
			rq.Method, rq.Path, rq.ContentLength, len(rq.Body), err)
	}
	return r
}

// TusHeaders returns the headers of a tus 1.0.0 request (Tus-Resumable) with more added.
func TusHeaders(more map[string]string) map[string]string {
	h := map[string]string{"Tus-Resumable": "1.0.0"}
	for k, v := range more {
		h[k] = v
	}
	return h
}
