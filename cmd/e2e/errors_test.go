package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// TestErrors sends every refused request of docs/api.md to one host and then
// checks that none of them changed anything.
func TestErrors(t *testing.T) {
	t.Parallel()
	const maxUpload = 10 * mib
	s := startServer(t, localBackend, map[string]string{"MAX_UPLOAD_SIZE": fmt.Sprint(maxUpload)})

	// Upload a: parts of 1 MiB, 1 MiB and 0.5 MiB. Upload b: another upload.
	const chunk, half = mib, mib / 2
	dataA := harness.RandomBytes(2*chunk+half, 10)
	partsA := harness.PartData(dataA, chunk)
	a := s.InitUpload(t, map[string]any{"filename": "err/a.bin", "total_size": len(dataA)})
	b := s.InitUpload(t, map[string]any{"filename": "err/b.bin", "total_size": chunk + 1})
	exp := harness.ParseTime(t, "expires_at", a.ExpiresAt)
	stagingBefore := harness.RegularFiles(t, s.Staging())
	objectsBefore := localBackend.objects(t, s)
	unknownID := "3f1c2a8e-9b7d-4c6e-8f00-000000000000"

	t.Run("api key", func(t *testing.T) {
		initBody := []byte(`{"filename":"k.bin","total_size":10}`)
		routes := map[string]struct {
			method, path string
			body         []byte
		}{
			"init":     {http.MethodPost, "/upload/init", initBody},
			"status":   {http.MethodGet, "/upload/" + a.FileID + "/status", nil},
			"complete": {http.MethodPost, "/upload/" + a.FileID + "/complete", nil},
			"delete":   {http.MethodDelete, "/upload/" + a.FileID, nil},
		}
		keys := map[string]struct {
			header map[string]string
			code   string
		}{
			"missing": {map[string]string{}, "missing_api_key"},
			"wrong":   {map[string]string{"X-API-Key": "wrong-key-0123456789abcdef"}, "invalid_api_key"},
			"prefix":  {map[string]string{"X-API-Key": harness.APIKey[:len(harness.APIKey)-1]}, "invalid_api_key"},
			"bearer":  {map[string]string{"Authorization": "Bearer " + harness.APIKey}, "missing_api_key"},
		}
		for rname, rt := range routes {
			for kname, k := range keys {
				t.Run(rname+"/"+kname, func(t *testing.T) {
					hdr := maps.Clone(k.header)
					if rt.body != nil {
						hdr["Content-Type"] = "application/json"
					}
					r := s.Do(t, rt.method, rt.path, bytes.NewReader(rt.body), hdr)
					harness.ExpectError(t, r, http.StatusUnauthorized, k.code)
				})
			}
		}
	})

	t.Run("init", func(t *testing.T) {
		body := func(v map[string]any) string {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		named := func(name string) string { return body(map[string]any{"filename": name, "total_size": 10}) }
		tests := map[string]struct {
			body        string
			contentType string // default application/json
			status      int
			code        string
		}{
			"filename ../x.bin":       {body: named("../x.bin"), status: 400, code: "invalid_filename"},
			"filename a/../../x.bin":  {body: named("a/../../x.bin"), status: 400, code: "invalid_filename"},
			"filename ..":             {body: named(".."), status: 400, code: "invalid_filename"},
			"filename a/..":           {body: named("a/.."), status: 400, code: "invalid_filename"},
			"filename /etc/passwd":    {body: named("/etc/passwd"), status: 400, code: "invalid_filename"},
			`filename a\b.bin`:        {body: named(`a\b.bin`), status: 400, code: "invalid_filename"},
			`filename C:\x.bin`:       {body: named(`C:\x.bin`), status: 400, code: "invalid_filename"},
			"filename a/./b.bin":      {body: named("a/./b.bin"), status: 400, code: "invalid_filename"},
			"filename x NUL .bin":     {body: named("x\x00.bin"), status: 400, code: "invalid_filename"},
			"filename x newline .bin": {body: named("x\n.bin"), status: 400, code: "invalid_filename"},
			"filename empty":          {body: named(""), status: 400, code: "invalid_filename"},
			"filename too long":       {body: named(strings.Repeat("a", 5000) + ".bin"), status: 400, code: "invalid_filename"},
			"filename a:b.bin":        {body: named("a:b.bin"), status: 400, code: "invalid_filename"},
			"filename a*b.bin":        {body: named("a*b.bin"), status: 400, code: "invalid_filename"},
			"filename a?b.bin":        {body: named("a?b.bin"), status: 400, code: "invalid_filename"},
			`filename a"b.bin`:        {body: named(`a"b.bin`), status: 400, code: "invalid_filename"},
			"filename a<b.bin":        {body: named("a<b.bin"), status: 400, code: "invalid_filename"},
			"filename a>b.bin":        {body: named("a>b.bin"), status: 400, code: "invalid_filename"},
			"filename a|b.bin":        {body: named("a|b.bin"), status: 400, code: "invalid_filename"},
			"bad json":                {body: `{"filename": "a.bin", "total_size": 10`, status: 400, code: "invalid_json"},
			"not json":                {body: `hello`, status: 400, code: "invalid_json"},
			"filename a number":       {body: `{"filename": 5, "total_size": 10}`, status: 400, code: "invalid_request"},
			"total_size a string":     {body: `{"filename": "a.bin", "total_size": "10"}`, status: 400, code: "invalid_request"},
			"total_size a fraction":   {body: `{"filename": "a.bin", "total_size": 1.5}`, status: 400, code: "invalid_request"},
			"total_size missing":      {body: `{"filename": "a.bin"}`, status: 400, code: "invalid_request"},
			"total_size negative":     {body: `{"filename": "a.bin", "total_size": -1}`, status: 400, code: "invalid_size"},
			"total_size over max":     {body: fmt.Sprintf(`{"filename": "a.bin", "total_size": %d}`, maxUpload+1), status: 413, code: "upload_too_large"},
			"webhook_url ftp":         {body: `{"filename": "a.bin", "total_size": 10, "webhook_url": "ftp://x"}`, status: 400, code: "invalid_webhook_url"},
			"webhook_url relative":    {body: `{"filename": "a.bin", "total_size": 10, "webhook_url": "/hook"}`, status: 400, code: "invalid_webhook_url"},
			"checksum_sha256 not hex": {body: `{"filename": "a.bin", "total_size": 10, "checksum_sha256": "zz"}`, status: 400, code: "invalid_checksum"},
			"body over 64 KiB":        {body: `{"filename": "a.bin", "total_size": 10` + strings.Repeat(" ", 70<<10) + `}`, status: 413, code: "request_too_large"},
			"content-type text/plain": {body: named("a.bin"), contentType: "text/plain", status: 415, code: "unsupported_media_type"},
			"content-type xml":        {body: named("a.bin"), contentType: "application/xml", status: 415, code: "unsupported_media_type"},
			"content-type multipart":  {body: named("a.bin"), contentType: "multipart/form-data; boundary=x", status: 415, code: "unsupported_media_type"},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				ct := tc.contentType
				if ct == "" {
					ct = "application/json"
				}
				r := s.Do(t, http.MethodPost, "/upload/init", strings.NewReader(tc.body),
					map[string]string{"X-API-Key": harness.APIKey, "Content-Type": ct})
				harness.ExpectError(t, r, tc.status, tc.code)
			})
		}
	})

	t.Run("routes", func(t *testing.T) {
		tests := map[string]struct {
			method, path string
			status       int
			code         string
			allow        string // a method the Allow header must list
		}{
			"GET /nope":                 {http.MethodGet, "/nope", 404, "route_not_found", ""},
			"POST /upload":              {http.MethodPost, "/upload", 404, "route_not_found", ""},
			"GET /upload/init":          {http.MethodGet, "/upload/init", 405, "method_not_allowed", "POST"},
			"PATCH /upload/x":           {http.MethodPatch, "/upload/x", 405, "method_not_allowed", "DELETE"},
			"PUT /upload/x/status":      {http.MethodPut, "/upload/" + a.FileID + "/status", 405, "method_not_allowed", "GET"},
			"GET /upload/x/complete":    {http.MethodGet, "/upload/" + a.FileID + "/complete", 405, "method_not_allowed", "POST"},
			"POST /upload/x/part/0":     {http.MethodPost, "/upload/" + a.FileID + "/part/0", 405, "method_not_allowed", "PUT"},
			"DELETE /health":            {http.MethodDelete, "/health", 405, "method_not_allowed", "GET"},
			"GET /upload/x/part/0/more": {http.MethodGet, "/upload/x/part/0/more", 404, "route_not_found", ""},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				r := s.Do(t, tc.method, tc.path, nil, map[string]string{"X-API-Key": harness.APIKey})
				harness.ExpectError(t, r, tc.status, tc.code)
				if tc.allow != "" && !strings.Contains(r.Header.Get("Allow"), tc.allow) {
					t.Errorf("Allow = %q, want it to list %s", r.Header.Get("Allow"), tc.allow)
				}
			})
		}
	})

	t.Run("lookup", func(t *testing.T) {
		tests := map[string]struct {
			method, path string
			status       int
			code         string
		}{
			"status of unknown upload":    {http.MethodGet, "/upload/" + unknownID + "/status", 404, "upload_not_found"},
			"complete of unknown upload":  {http.MethodPost, "/upload/" + unknownID + "/complete", 404, "upload_not_found"},
			"delete of unknown upload":    {http.MethodDelete, "/upload/" + unknownID, 404, "upload_not_found"},
			"status of id nope":           {http.MethodGet, "/upload/nope/status", 404, "upload_not_found"},
			"include_parts=maybe":         {http.MethodGet, "/upload/" + a.FileID + "/status?include_parts=maybe", 400, "invalid_request"},
			"complete with parts missing": {http.MethodPost, "/upload/" + a.FileID + "/complete", 400, "parts_missing"},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				r := s.API(t, tc.method, tc.path, nil)
				harness.ExpectError(t, r, tc.status, tc.code)
			})
		}
	})

	t.Run("part token", func(t *testing.T) {
		valid := harness.PartClaims(a.FileID, 0, chunk, exp)
		tests := map[string]struct {
			authorization string // "" = no header
			apiKey        bool   // also send the (management) API key
			status        int
			code          string
		}{
			"no token":            {"", false, 401, "missing_token"},
			"garbage token":       {"Bearer garbage", false, 401, "invalid_token"},
			"three garbage parts": {"Bearer a.b.c", false, 401, "invalid_token"},
			"other secret":        {"Bearer " + harness.SignToken("another-secret-0123456789abcdef-0123456789", "HS256", valid), false, 401, "invalid_token"},
			"alg none":            {"Bearer " + harness.SignToken("", "none", valid), false, 401, "invalid_token"},
			"alg HS512":           {"Bearer " + harness.SignToken(harness.JWTSecret, "HS512", valid), false, 401, "invalid_token"},
			"tampered payload":    {"Bearer " + tamper(a.Parts[1].Token, a.Parts[0].Token), false, 401, "invalid_token"},
			"expired":             {"Bearer " + harness.ForgeToken(a.FileID, 0, chunk, time.Now().Add(-time.Minute)), false, 401, "token_expired"},
			"token of upload b":   {"Bearer " + b.Parts[0].Token, false, 403, "token_mismatch"},
			"token of part 1":     {"Bearer " + a.Parts[1].Token, false, 403, "token_mismatch"},
			"forged for upload b": {"Bearer " + harness.ForgeToken(b.FileID, 0, chunk, exp), false, 403, "token_mismatch"},
			"forged for part 2":   {"Bearer " + harness.ForgeToken(a.FileID, 2, half, exp), false, 403, "token_mismatch"},
			"api key, no token":   {"", true, 401, "missing_token"},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				hdr := map[string]string{"Content-Type": "application/octet-stream"}
				if tc.authorization != "" {
					hdr["Authorization"] = tc.authorization
				}
				if tc.apiKey {
					hdr["X-API-Key"] = harness.APIKey
				}
				r := s.Do(t, http.MethodPut, "/upload/"+a.FileID+"/part/0", bytes.NewReader(partsA[0]), hdr)
				harness.ExpectError(t, r, tc.status, tc.code)
			})
		}
	})

	t.Run("part number", func(t *testing.T) {
		tests := map[string]struct {
			part  string
			token string
			want  map[string]int
		}{
			"abc":               {"abc", a.Parts[0].Token, map[string]int{"invalid_part_number": 400, "invalid_token": 401, "token_mismatch": 403}},
			"-1":                {"-1", a.Parts[0].Token, map[string]int{"invalid_part_number": 400, "invalid_token": 401, "token_mismatch": 403}},
			"1.5":               {"1.5", a.Parts[1].Token, map[string]int{"invalid_part_number": 400, "invalid_token": 401, "token_mismatch": 403}},
			"3 (one past last)": {"3", harness.ForgeToken(a.FileID, 3, chunk, exp), map[string]int{"part_not_found": 404}},
			"100":               {"100", harness.ForgeToken(a.FileID, 100, chunk, exp), map[string]int{"part_not_found": 404}},
			"unknown upload":    {"0", harness.ForgeToken(unknownID, 0, chunk, exp), map[string]int{"upload_not_found": 404}},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				id := a.FileID
				if name == "unknown upload" {
					id = unknownID
				}
				r := s.Do(t, http.MethodPut, "/upload/"+id+"/part/"+tc.part, bytes.NewReader(partsA[0]), harness.PartHeaders(tc.token))
				code := harness.ExpectErrorOneOf(t, r, tc.want)
				t.Logf("PUT /upload/<id>/part/%s: %d %s", tc.part, r.Status, code)
			})
		}
	})

	t.Run("part size", func(t *testing.T) {
		tests := map[string]struct {
			part          int
			contentLength int64
			send          int // bytes sent after the head
			closeWrite    bool
			status        int
			code          string
		}{
			"first part, Content-Length one short":  {0, chunk - 1, chunk - 1, false, 400, "part_size_mismatch"},
			"first part, Content-Length one long":   {0, chunk + 1, chunk + 1, false, 413, "part_too_large"},
			"first part, Content-Length 0":          {0, 0, 0, false, 400, "part_size_mismatch"},
			"last part, Content-Length one short":   {2, half - 1, half - 1, false, 400, "part_size_mismatch"},
			"last part, Content-Length one long":    {2, half + 1, half + 1, false, 413, "part_too_large"},
			"last part, a whole chunk":              {2, chunk, chunk, false, 413, "part_too_large"},
			"first part, body cut short":            {0, chunk, chunk / 2, true, 400, "part_size_mismatch"},
			"first part, body one byte short":       {0, chunk, chunk - 1, true, 400, "part_size_mismatch"},
			"last part, body cut short":             {2, half, 1000, true, 400, "part_size_mismatch"},
			"first part, no body":                   {0, chunk, 0, true, 400, "part_size_mismatch"},
			"Content-Length 1 GiB, body never sent": {0, 1 << 30, 0, false, 413, "part_too_large"},
			"Content-Length 1 TiB, body never sent": {2, 1 << 40, 0, false, 413, "part_too_large"},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				body := make([]byte, tc.send)
				copy(body, partsA[tc.part])
				start := time.Now()
				r := s.Raw(t, harness.RawRequest{
					Method:        http.MethodPut,
					Path:          fmt.Sprintf("/upload/%s/part/%d", a.FileID, tc.part),
					Header:        harness.PartHeaders(a.Parts[tc.part].Token),
					ContentLength: tc.contentLength,
					Body:          body,
					CloseWrite:    tc.closeWrite,
				})
				harness.ExpectError(t, r, tc.status, tc.code)
				t.Logf("answered %d in %v", r.Status, time.Since(start).Round(time.Millisecond))
			})
		}
	})

	t.Run("chunked part size", func(t *testing.T) {
		tests := map[string]struct {
			part   int
			size   int
			status int
			code   string
		}{
			"first part one short": {0, chunk - 1, 400, "part_size_mismatch"},
			"first part one long":  {0, chunk + 1, 413, "part_too_large"},
			"first part empty":     {0, 0, 400, "part_size_mismatch"},
			"last part one short":  {2, half - 1, 400, "part_size_mismatch"},
			"last part one long":   {2, half + 1, 413, "part_too_large"},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				body := make([]byte, tc.size)
				copy(body, partsA[tc.part])
				r := s.putChunked(t, a.FileID, tc.part, a.Parts[tc.part].Token, body)
				harness.ExpectError(t, r, tc.status, tc.code)
			})
		}
	})

	// Nothing above changed anything.
	for _, up := range []harness.InitResponse{a, b} {
		st := s.Status(t, up.FileID)
		if st.Status != "pending" || st.UploadedParts != 0 || st.ProgressPercent != 0 {
			t.Errorf("upload %s after the refused requests: %+v, want pending with 0 parts uploaded", up.FileID, st)
		}
		checkParts(t, st.Parts, make([]string, up.TotalParts))
	}
	if got := harness.RegularFiles(t, s.Staging()); !maps.Equal(got, stagingBefore) {
		t.Errorf("TEMP_STORAGE_PATH after the refused requests: %v, before: %v", got, stagingBefore)
	}
	// A refused body written into the upload's part file (sdk.PartFiles) may leave bytes in
	// that hidden file, never a receipt: only what is visible must not have changed.
	if got := harness.VisibleFiles(localBackend.objects(t, s)); !maps.Equal(got, harness.VisibleFiles(objectsBefore)) {
		t.Errorf("LOCAL_STORAGE_PATH after the refused requests: %v, before: %v", got, objectsBefore)
	}
	// The refused parts can now be sent correctly: chunked, with a token
	// forged with the right secret, and on a raw connection.
	t.Run("resend", func(t *testing.T) {
		r := s.putChunked(t, a.FileID, 0, a.Parts[0].Token, partsA[0])
		if r.Status != http.StatusOK {
			t.Errorf("part 0 chunked with the exact size: got %v, want 200", r)
		}
		r = s.PutPart(t, a.FileID, 1, harness.ForgeToken(a.FileID, 1, chunk, exp), partsA[1], nil)
		if r.Status != http.StatusOK {
			t.Errorf("part 1 with a token forged with JWT_SECRET: got %v, want 200", r)
		}
		r = s.Raw(t, harness.RawRequest{
			Method:        http.MethodPut,
			Path:          fmt.Sprintf("/upload/%s/part/2", a.FileID),
			Header:        harness.PartHeaders(a.Parts[2].Token),
			ContentLength: half,
			Body:          partsA[2],
		})
		if r.Status != http.StatusOK {
			t.Errorf("part 2 on a raw connection: got %v, want 200", r)
		}
		st := s.Status(t, a.FileID)
		checkParts(t, st.Parts, []string{harness.SHA256Hex(partsA[0]), harness.SHA256Hex(partsA[1]), harness.SHA256Hex(partsA[2])})
		c := s.CompleteAndWait(t, a.FileID, 30*time.Second)
		if got := s.readObject(t, harness.Str(c.FinalPath)); !bytes.Equal(got, dataA) {
			t.Errorf("delivered %d bytes (sha256 %s), want %d (sha256 %s)", len(got), harness.SHA256Hex(got), len(dataA), harness.SHA256Hex(dataA))
		}
	})
}

// putChunked sends a part with Transfer-Encoding: chunked (no Content-Length).
func (s *server) putChunked(tb testing.TB, id string, n int, token string, data []byte) harness.Response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/upload/%s/part/%d", s.URL(""), id, n), harness.ChunkedBody{Reader: bytes.NewReader(data)})
	if err != nil {
		tb.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	return s.Send(tb, req)
}

// tamper returns the header and signature of sigFrom with the payload of
// payloadFrom.
func tamper(payloadFrom, sigFrom string) string {
	p := strings.Split(payloadFrom, ".")
	s := strings.Split(sigFrom, ".")
	if len(p) != 3 || len(s) != 3 {
		return "x.y.z"
	}
	return s[0] + "." + p[1] + "." + s[2]
}

// TestInitLimits checks MAX_UPLOAD_SIZE and MAX_PARTS at their boundaries.
func TestInitLimits(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		env    map[string]string
		ok     int64 // largest accepted total_size
		parts  int   // its number of parts
		status int   // for ok+1
		code   string
	}{
		"MAX_UPLOAD_SIZE": {map[string]string{"MAX_UPLOAD_SIZE": fmt.Sprint(3 * mib)}, 3 * mib, 3, 413, "upload_too_large"},
		"MAX_PARTS":       {map[string]string{"MAX_PARTS": "4"}, 4 * mib, 4, 400, "too_many_parts"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, localBackend, tc.env)
			up := s.InitUpload(t, map[string]any{"filename": "limit.bin", "total_size": tc.ok})
			if up.TotalParts != tc.parts {
				t.Errorf("total_size %d: total_parts %d, want %d", tc.ok, up.TotalParts, tc.parts)
			}
			r := s.API(t, http.MethodPost, "/upload/init", map[string]any{"filename": "limit.bin", "total_size": tc.ok + 1})
			harness.ExpectError(t, r, tc.status, tc.code)
		})
	}
}

// TestInitContentTypes checks the Content-Types init accepts for a JSON body:
// JSON, and curl's default for -d (docs/api.md, 415 row).
func TestInitContentTypes(t *testing.T) {
	t.Parallel()
	s := startServer(t, localBackend, nil)
	tests := map[string]struct {
		contentType string
	}{
		"json":              {"application/json"},
		"json with charset": {"application/json; charset=utf-8"},
		"curl -d default":   {"application/x-www-form-urlencoded"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := s.Do(t, http.MethodPost, "/upload/init", strings.NewReader(`{"filename": "ct.bin", "total_size": 5}`),
				map[string]string{"X-API-Key": harness.APIKey, "Content-Type": tc.contentType})
			if r.Status != http.StatusOK {
				t.Fatalf("got %v, want 200", r)
			}
			if up := harness.Decode[harness.InitResponse](t, r); up.FileID == "" || up.TotalParts != 1 {
				t.Errorf("init = %s, want a file_id and 1 part", r.Body)
			}
		})
	}
}
