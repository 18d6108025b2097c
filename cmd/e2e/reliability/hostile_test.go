package reliability

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// rawHead is a request line and headers, with Host and Connection: close. contentLength
// < 0 sends no Content-Length; chunked adds Transfer-Encoding: chunked.
func rawHead(addr, method, path string, hdr map[string]string, contentLength int64, chunked bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path, addr)
	if contentLength >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", contentLength)
	}
	if chunked {
		b.WriteString("Transfer-Encoding: chunked\r\n")
	}
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	return b.String()
}

// chunk encodes one chunk of a chunked body (an empty b is the last chunk).
func chunk(b []byte) []byte {
	out := fmt.Appendf(nil, "%x\r\n", len(b))
	out = append(out, b...)
	out = append(out, "\r\n"...)
	if len(b) == 0 {
		return []byte("0\r\n\r\n")
	}
	return out
}

// exchange connects to the host, runs write on the connection in the background (write
// errors are expected: the server may answer and close before it read everything) and
// reads the answer. It returns the answer and how long it took to arrive.
func (s *server) exchange(write func(w io.Writer) error) (harness.Response, time.Duration, error) {
	conn, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		return harness.Response{}, 0, err
	}
	defer conn.Close()
	start := time.Now()
	go func() {
		_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_ = write(conn)
	}()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return harness.Response{}, time.Since(start), err
	}
	took := time.Since(start)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return harness.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, took, nil
}

// hostileCase is one refused request.
type hostileCase struct {
	name string
	send func(t *testing.T) (harness.Response, time.Duration)
	// want are the accepted error codes with their status; plain, when set instead, is
	// the only thing checked (Go's own plain-text answers).
	want   map[string]int
	plain  int
	within time.Duration // the answer must arrive within this (default 10 s)
}

func one(code string, status int) map[string]int { return map[string]int{code: status} }

// uploadCounts reads chunked_uploader_uploads{status} from /metrics.
func uploadCounts(tb testing.TB, s *server) map[string]float64 {
	tb.Helper()
	r := s.Do(tb, http.MethodGet, "/metrics", nil, nil)
	out := map[string]float64{}
	for _, line := range strings.Split(string(r.Body), "\n") {
		rest, ok := strings.CutPrefix(line, `chunked_uploader_uploads{status="`)
		if !ok {
			continue
		}
		st, val, _ := strings.Cut(rest, `"} `)
		var v float64
		fmt.Sscan(val, &v)
		out[st] = v
	}
	return out
}

// TestHostileInput sends malformed, oversized and malicious requests. Each must get the
// documented JSON error (or, above 1 MiB of headers, Go's own 431), promptly, and none may
// change anything: no upload created, no part stored, nothing delivered. Then the
// look-alikes that are legal (unicode and long names, a literal %2e%2e, a chunked part of
// the exact size) are accepted and delivered under their literal names.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, "local", nil)
	const chunkSize = mib
	a := s.InitUpload(t, map[string]any{"filename": "hostile/a.bin", "total_size": 2*chunkSize + chunkSize/2})
	b := s.InitUpload(t, map[string]any{"filename": "hostile/b.bin", "total_size": chunkSize + 1})
	exp, err := time.Parse(time.RFC3339, a.ExpiresAt)
	if err != nil {
		t.Fatal(err)
	}
	countsBefore := uploadCounts(t, s)
	stagingBefore := harness.RegularFiles(t, s.Staging())
	objectsBefore := harness.RegularFiles(t, s.objectRoot())
	outside := harness.RegularFiles(t, filepath.Dir(s.objectRoot()))

	apiHdr := map[string]string{"X-API-Key": harness.APIKey, "Content-Type": "application/json"}
	initBody := func(body string) func(t *testing.T) (harness.Response, time.Duration) {
		return func(t *testing.T) (harness.Response, time.Duration) {
			start := time.Now()
			r := s.Do(t, http.MethodPost, "/upload/init", strings.NewReader(body), apiHdr)
			return r, time.Since(start)
		}
	}
	named := func(name string) func(t *testing.T) (harness.Response, time.Duration) {
		body, _ := json.Marshal(map[string]any{"filename": name, "total_size": 10})
		return initBody(string(body))
	}
	withHeader := func(method, path string, hdr map[string]string, body string) func(t *testing.T) (harness.Response, time.Duration) {
		return func(t *testing.T) (harness.Response, time.Duration) {
			start := time.Now()
			r := s.Do(t, method, path, strings.NewReader(body), hdr)
			return r, time.Since(start)
		}
	}
	raw := func(method, path string, hdr map[string]string) func(t *testing.T) (harness.Response, time.Duration) {
		return func(t *testing.T) (harness.Response, time.Duration) {
			r, took, err := s.exchange(func(w io.Writer) error {
				_, err := io.WriteString(w, rawHead(s.Addr(), method, path, hdr, 0, false))
				return err
			})
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			return r, took
		}
	}
	partPath := "/upload/" + a.FileID + "/part/0"
	withToken := func(tok string) func(t *testing.T) (harness.Response, time.Duration) {
		return withHeader(http.MethodPut, partPath, harness.PartHeaders(tok), strings.Repeat("x", chunkSize))
	}
	chunkedPart := func(size int) func(t *testing.T) (harness.Response, time.Duration) {
		return func(t *testing.T) (harness.Response, time.Duration) {
			body := harness.RandomBytes(size, 99)
			r, took, err := s.exchange(func(w io.Writer) error {
				if _, err := io.WriteString(w, rawHead(s.Addr(), http.MethodPut, partPath, harness.PartHeaders(a.Parts[0].Token), -1, true)); err != nil {
					return err
				}
				for off := 0; off < len(body); off += 256 << 10 {
					if _, err := w.Write(chunk(body[off:min(off+256<<10, len(body))])); err != nil {
						return err
					}
				}
				_, err := w.Write(chunk(nil))
				return err
			})
			if err != nil {
				t.Fatalf("chunked part of %d bytes: %v", size, err)
			}
			return r, took
		}
	}
	// hugeBody sends 10 MiB of JSON slowly (64 KiB at once, then 1 MiB/s): an answer
	// within 2 s means the server did not wait for it.
	hugeBody := func(chunked bool) func(t *testing.T) (harness.Response, time.Duration) {
		return func(t *testing.T) (harness.Response, time.Duration) {
			const size = 10 * mib
			body := append([]byte(`{"filename": "huge.bin", "total_size": 10, "pad": "`), bytes.Repeat([]byte("a"), size)...)
			body = append(body, `"}`...)
			cl := int64(len(body))
			if chunked {
				cl = -1
			}
			r, took, err := s.exchange(func(w io.Writer) error {
				if _, err := io.WriteString(w, rawHead(s.Addr(), http.MethodPost, "/upload/init", apiHdr, cl, chunked)); err != nil {
					return err
				}
				for off, piece := 0, 64<<10; off < len(body); off += piece {
					p := body[off:min(off+piece, len(body))]
					if chunked {
						p = chunk(p)
					}
					if _, err := w.Write(p); err != nil {
						return err
					}
					if off > 0 {
						time.Sleep(time.Second / 16)
					}
				}
				if chunked {
					_, err := w.Write(chunk(nil))
					return err
				}
				return nil
			})
			if err != nil {
				t.Fatalf("10 MiB body: %v", err)
			}
			return r, took
		}
	}
	other := harness.SignToken("another-secret-0123456789abcdef-0123456789", "HS256", harness.PartClaims(a.FileID, 0, chunkSize, exp))
	none := harness.SignToken("", "none", harness.PartClaims(a.FileID, 0, chunkSize, exp))
	hs512 := harness.SignToken(harness.JWTSecret, "HS512", harness.PartClaims(a.FileID, 0, chunkSize, exp))
	expired := harness.SignToken(harness.JWTSecret, "HS256", harness.PartClaims(a.FileID, 0, chunkSize, time.Now().Add(-time.Hour)))
	wrongSize := harness.SignToken(harness.JWTSecret, "HS256", harness.PartClaims(a.FileID, 0, chunkSize+1, exp))
	noExp := harness.SignToken(harness.JWTSecret, "HS256", map[string]any{"upload_id": a.FileID, "part_number": 0, "expected_size": chunkSize})
	junk := strings.Repeat("j", 200<<10)
	manyHeaders := map[string]string{"X-API-Key": harness.APIKey}
	for i := range 2000 {
		manyHeaders[fmt.Sprintf("X-Many-%04d", i)] = strings.Repeat("m", 40)
	}
	nested := func(depth int) string {
		return `{"filename": "n.bin", "total_size": 10, "x": ` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
	}
	longPath := strings.Repeat("d/", 520) + "x.bin" // 1045 bytes

	cases := []hostileCase{
		// Headers.
		{name: "init with a 200 KiB header", send: withHeader(http.MethodPost, "/upload/init",
			map[string]string{"X-API-Key": harness.APIKey, "Content-Type": "application/json", "X-Junk": junk}, `{"filename": "h.bin", "total_size": 10}`),
			want: one("headers_too_large", 431)},
		{name: "part with a 200 KiB header", send: withHeader(http.MethodPut, partPath,
			map[string]string{"Authorization": "Bearer " + a.Parts[0].Token, "X-Junk": junk}, strings.Repeat("x", chunkSize)),
			want: one("headers_too_large", 431)},
		{name: "status with a 200 KiB header", send: withHeader(http.MethodGet, "/upload/"+a.FileID+"/status",
			map[string]string{"X-API-Key": harness.APIKey, "X-Junk": junk}, ""), want: one("headers_too_large", 431)},
		{name: "init with 2000 headers", send: withHeader(http.MethodPost, "/upload/init", manyHeaders, `{"filename": "h.bin", "total_size": 10}`),
			want: one("headers_too_large", 431)},
		{name: "init with a 1.5 MiB header", send: raw(http.MethodPost, "/upload/init",
			map[string]string{"X-API-Key": harness.APIKey, "X-Junk": strings.Repeat("j", 3*mib/2)}), plain: 431},
		// Part bodies without a length.
		{name: "chunked part too short", send: chunkedPart(1000), want: one("part_size_mismatch", 400)},
		{name: "chunked part empty", send: chunkedPart(0), want: one("part_size_mismatch", 400)},
		{name: "chunked part too long", send: chunkedPart(chunkSize + 1), want: one("part_too_large", 413)},
		// Tokens.
		{name: "token of another secret", send: withToken(other), want: one("invalid_token", 401)},
		{name: "token alg none", send: withToken(none), want: one("invalid_token", 401)},
		{name: "token HS512", send: withToken(hs512), want: one("invalid_token", 401)},
		{name: "token garbage", send: withToken("a.b.c"), want: one("invalid_token", 401)},
		{name: "token without exp", send: withToken(noExp), want: one("invalid_token", 401)},
		{name: "token expired", send: withToken(expired), want: one("token_expired", 401)},
		{name: "token of another upload", send: withToken(b.Parts[0].Token), want: one("token_mismatch", 403)},
		{name: "token of another part", send: withToken(a.Parts[1].Token), want: one("token_mismatch", 403)},
		{name: "token of another size", send: withToken(wrongSize), want: one("token_mismatch", 403)},
		// Filenames.
		{name: "filename over 1 KiB", send: named(longPath), want: one("invalid_filename", 400)},
		{name: "filename segment of 300 bytes", send: named(strings.Repeat("s", 300)), want: one("invalid_filename", 400)},
		{name: "filename ../x", send: named("../x.bin"), want: one("invalid_filename", 400)},
		{name: "filename a/../../x", send: named("a/../../x.bin"), want: one("invalid_filename", 400)},
		{name: "filename ..", send: named(".."), want: one("invalid_filename", 400)},
		{name: "filename a/./b", send: named("a/./b.bin"), want: one("invalid_filename", 400)},
		{name: "filename /etc/passwd", send: named("/etc/passwd"), want: one("invalid_filename", 400)},
		{name: "filename //x", send: named("//x.bin"), want: one("invalid_filename", 400)},
		{name: `filename a\b`, send: named(`a\b.bin`), want: one("invalid_filename", 400)},
		{name: `filename ..\x`, send: named(`..\x.bin`), want: one("invalid_filename", 400)},
		{name: "filename with NUL", send: initBody(`{"filename": "x\u0000.bin", "total_size": 10}`), want: one("invalid_filename", 400)},
		{name: "filename ../ with NUL", send: initBody(`{"filename": "..\u0000/x.bin", "total_size": 10}`), want: one("invalid_filename", 400)},
		{name: `filename C:\x`, send: named(`C:\x.bin`), want: one("invalid_filename", 400)},
		{name: "filename C:/x", send: named("C:/x.bin"), want: one("invalid_filename", 400)},
		{name: "filename c:x", send: named("c:x.bin"), want: one("invalid_filename", 400)},
		{name: "filename invalid UTF-8", send: initBody("{\"filename\": \"\xff\xfe.bin\", \"total_size\": 10}"), want: one("invalid_filename", 400)},
		{name: "filename dir/", send: named("dir/"), want: one("invalid_filename", 400)},
		{name: "filename trailing dot", send: named("x.bin."), want: one("invalid_filename", 400)},
		{name: "filename a number", send: initBody(`{"filename": 12, "total_size": 10}`), want: one("invalid_request", 400)},
		// Encoded separators and traversal in the URL path.
		{name: "GET /upload/%2e%2e/status", send: raw(http.MethodGet, "/upload/%2e%2e/status", map[string]string{"X-API-Key": harness.APIKey}),
			want: map[string]int{"route_not_found": 404, "upload_not_found": 404}},
		{name: "GET /upload/a%2Fb/status", send: raw(http.MethodGet, "/upload/a%2Fb/status", map[string]string{"X-API-Key": harness.APIKey}),
			want: map[string]int{"route_not_found": 404, "upload_not_found": 404}},
		{name: "GET /upload/..%2F..%2Fetc/status", send: raw(http.MethodGet, "/upload/..%2F..%2Fetc/status", map[string]string{"X-API-Key": harness.APIKey}),
			want: map[string]int{"route_not_found": 404, "upload_not_found": 404}},
		{name: "GET /upload/../status", send: raw(http.MethodGet, "/upload/../status", map[string]string{"X-API-Key": harness.APIKey}),
			want: map[string]int{"route_not_found": 404, "upload_not_found": 404}},
		{name: "GET /upload/a%00b/status", send: raw(http.MethodGet, "/upload/a%00b/status", map[string]string{"X-API-Key": harness.APIKey}),
			want: map[string]int{"route_not_found": 404, "upload_not_found": 404}},
		{name: "DELETE /upload/%2e%2e", send: raw(http.MethodDelete, "/upload/%2e%2e", map[string]string{"X-API-Key": harness.APIKey}),
			want: map[string]int{"route_not_found": 404, "upload_not_found": 404}},
		{name: "POST /upload/%2e%2e/complete", send: raw(http.MethodPost, "/upload/%2e%2e/complete", map[string]string{"X-API-Key": harness.APIKey}),
			want: map[string]int{"route_not_found": 404, "upload_not_found": 404}},
		{name: "PUT /upload/a%2Fb/part/0", send: raw(http.MethodPut, "/upload/a%2Fb/part/0", harness.PartHeaders(a.Parts[0].Token)),
			want: map[string]int{"route_not_found": 404, "token_mismatch": 403}},
		// Bodies.
		{name: "10 MiB JSON body", send: hugeBody(false), want: one("request_too_large", 413), within: 2 * time.Second},
		{name: "10 MiB chunked JSON body", send: hugeBody(true), want: one("request_too_large", 413), within: 2 * time.Second},
		{name: "JSON nested 20000 deep", send: initBody(nested(20000)), want: map[string]int{"invalid_json": 400, "invalid_request": 400}},
		{name: "filename nested 5000 deep", send: initBody(`{"filename": ` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `, "total_size": 10}`),
			want: one("invalid_request", 400)},
		{name: "JSON array", send: initBody(`[{"filename": "x.bin", "total_size": 10}]`), want: one("invalid_json", 400)},
		{name: "JSON twice", send: initBody(`{"filename": "x.bin", "total_size": 10}{"filename": "y.bin", "total_size": 10}`), want: one("invalid_json", 400)},
		{name: "JSON with a BOM", send: initBody("\ufeff" + `{"filename": "x.bin", "total_size": 10}`), want: one("invalid_json", 400)},
		{name: "total_size 1e999", send: initBody(`{"filename": "x.bin", "total_size": 1e999}`), want: one("invalid_request", 400)},
		{name: "total_size 1e3", send: initBody(`{"filename": "x.bin", "total_size": 1e3}`), want: one("invalid_request", 400)},
		{name: "total_size 0x10", send: initBody(`{"filename": "x.bin", "total_size": 0x10}`), want: one("invalid_json", 400)},
		{name: "total_size 010", send: initBody(`{"filename": "x.bin", "total_size": 010}`), want: one("invalid_json", 400)},
		{name: "total_size 10.0", send: initBody(`{"filename": "x.bin", "total_size": 10.0}`), want: one("invalid_request", 400)},
		{name: "total_size 2^63", send: initBody(`{"filename": "x.bin", "total_size": 9223372036854775808}`), want: one("invalid_request", 400)},
		{name: "total_size 2^63-1", send: initBody(`{"filename": "x.bin", "total_size": 9223372036854775807}`), want: one("upload_too_large", 413)},
		{name: "total_size -1", send: initBody(`{"filename": "x.bin", "total_size": -1}`), want: one("invalid_size", 400)},
		{name: "total_size NaN", send: initBody(`{"filename": "x.bin", "total_size": NaN}`), want: one("invalid_json", 400)},
		{name: "total_size string", send: initBody(`{"filename": "x.bin", "total_size": "10"}`), want: one("invalid_request", 400)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, took := tc.send(t)
			within := tc.within
			if within == 0 {
				within = 10 * time.Second
			}
			if took > within {
				t.Errorf("answered after %v, want within %v", took.Round(time.Millisecond), within)
			}
			if tc.plain != 0 {
				if r.Status != tc.plain {
					t.Errorf("got %v, want %d", r, tc.plain)
				}
				return
			}
			harness.ExpectErrorOneOf(t, r, tc.want)
			if tc.within != 0 {
				t.Logf("answered in %v: %v", took.Round(time.Millisecond), r)
			}
		})
	}

	// Nothing changed.
	if got := uploadCounts(t, s); !maps.Equal(got, countsBefore) {
		t.Errorf("upload records by status after the refused requests: %v, before %v", got, countsBefore)
	}
	if got := harness.RegularFiles(t, s.Staging()); !maps.Equal(got, stagingBefore) {
		t.Errorf("staging after the refused requests: %v, before %v", got, stagingBefore)
	}
	if got := harness.VisibleFiles(harness.RegularFiles(t, s.objectRoot())); !maps.Equal(got, harness.VisibleFiles(objectsBefore)) {
		t.Errorf("delivered files after the refused requests: %v, before %v", got, objectsBefore)
	}
	for _, up := range []harness.InitResponse{a, b} {
		st := s.Status(t, up.FileID)
		for _, p := range st.Parts {
			if st.Status != "pending" || st.UploadedParts != 0 || p.Status != "pending" || harness.Str(p.ChecksumSHA256) != "" {
				t.Errorf("upload %s after the refused requests: %+v", up.FileID, st)
				break
			}
		}
	}
	if r := s.Health(t); r.Status != http.StatusOK {
		t.Errorf("GET /health after the hostile requests: %v", r)
	}

	// The legal look-alikes.
	t.Run("accepted", func(t *testing.T) {
		deliver := func(t *testing.T, filename string, data []byte) (harness.InitResponse, harness.CompleteResponse) {
			t.Helper()
			up := s.InitUpload(t, map[string]any{"filename": filename, "total_size": len(data)})
			for n, p := range harness.PartData(data, chunkSize) {
				s.MustPutPart(t, up.FileID, n, up.Parts[n].Token, p)
			}
			c := s.CompleteAndWait(t, up.FileID, time.Minute)
			dir, name := "files", filename
			if i := strings.LastIndexByte(filename, '/'); i >= 0 {
				dir, name = filename[:i], filename[i+1:]
			}
			want := filepath.Join(s.objectRoot(), filepath.FromSlash(dir), up.FileID+"_"+name)
			if harness.Str(c.FinalPath) != want {
				t.Errorf("final_path %q, want the literal name %q", harness.Str(c.FinalPath), want)
			}
			got, err := os.ReadFile(want)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("delivered file %q: %d bytes (%v), want %d", want, len(got), err, len(data))
			}
			return up, c
		}
		t.Run("unicode", func(t *testing.T) {
			up, _ := deliver(t, "données/日本語/файл 🎬.bin", []byte("unicode"))
			if st := s.Status(t, up.FileID); st.Filename != "файл 🎬.bin" || st.Path != "données/日本語" {
				t.Errorf("status filename %q path %q", st.Filename, st.Path)
			}
		})
		t.Run("literal percent", func(t *testing.T) {
			deliver(t, "%2e%2e/%2e%2e%2fx%00.bin", []byte("percent"))
		})
		t.Run("long name", func(t *testing.T) {
			name := strings.Repeat(strings.Repeat("L", 199)+"/", 4) + strings.Repeat("n", 180) + ".bin" // 984 bytes
			deliver(t, name, []byte("long"))
		})
		t.Run("chunked exact part", func(t *testing.T) {
			data := harness.RandomBytes(chunkSize, 98)
			r, _, err := s.exchange(func(w io.Writer) error {
				if _, err := io.WriteString(w, rawHead(s.Addr(), http.MethodPut, "/upload/"+b.FileID+"/part/0", harness.PartHeaders(b.Parts[0].Token), -1, true)); err != nil {
					return err
				}
				for off := 0; off < len(data); off += 100_000 {
					if _, err := w.Write(chunk(data[off:min(off+100_000, len(data))])); err != nil {
						return err
					}
				}
				_, err := w.Write(chunk(nil))
				return err
			})
			if err != nil || r.Status != http.StatusOK {
				t.Fatalf("chunked part of the exact size: %v %v, want 200", r, err)
			}
			if p := harness.Decode[harness.PartResponse](t, r); p.ChecksumSHA256 != harness.SHA256Hex(data) {
				t.Errorf("checksum %s, want %s", p.ChecksumSHA256, harness.SHA256Hex(data))
			}
		})
		t.Run("total_size -0", func(t *testing.T) {
			r := s.Do(t, http.MethodPost, "/upload/init", strings.NewReader(`{"filename": "zero.bin", "total_size": -0}`), apiHdr)
			if r.Status == http.StatusOK {
				up := harness.Decode[harness.InitResponse](t, r)
				if up.TotalParts != 0 {
					t.Errorf("-0 accepted as %d parts, want 0", up.TotalParts)
				}
				t.Logf("total_size -0 is taken as 0: %v", r)
				return
			}
			harness.ExpectErrorOneOf(t, r, map[string]int{"invalid_request": 400, "invalid_size": 400})
		})
	})
	// Nothing was written outside the backend's root.
	after := harness.RegularFiles(t, filepath.Dir(s.objectRoot()))
	for name := range after {
		if _, ok := outside[name]; !ok && !strings.HasPrefix(name, filepath.Base(s.objectRoot())+"/") &&
			!strings.HasPrefix(name, "staging/") && !strings.HasPrefix(name, "uploads.db") && !strings.HasPrefix(name, "host-") {
			t.Errorf("file %s appeared outside the backend's root", name)
		}
	}
}
