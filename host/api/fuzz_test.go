package api

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// FuzzDecodeInit: any body decodes to a request or to a client error, never a panic or
// an internal error.
func FuzzDecodeInit(f *testing.F) {
	for _, s := range []string{`{"filename":"a.bin","total_size":10}`, `{"filename":"a","total_size":-1}`, `{"filename":5}`,
		`{"total_size":"10"}`, `[]`, `null`, `{"filename":"a","total_size":1e400}`, `{"filename":"a","total_size":9223372036854775808}`,
		`{"filename":"a","total_size":1,"webhook_url":null,"checksum_sha256":"ab"}`, `{"a":1} {}`, "\xff\xfe", `{"filename":"\ud800"}`} {
		f.Add(s, "application/json")
	}
	f.Add(`{}`, "text/plain")
	f.Add(`{}`, "application/json; charset=\"")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := httptest.NewRequest("POST", "/upload/init", strings.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		req, err := decodeInit(httptest.NewRecorder(), r)
		if err != nil {
			code := host.ErrorCode(err)
			if status, ok := statusOf[code]; !ok || status >= 500 {
				t.Fatalf("body %q: %v (status %d)", body, err, status)
			}
			return
		}
		if req == nil {
			t.Fatal("nil request without an error")
		}
	})
}
