package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host/auth"
)

// TestExpiredUploadPart: after its upload expired, a part upload with the upload's own token
// (validly signed, and expired with the upload) answers 410 upload_expired, as docs/api.md
// says, not 401 token_expired (which the CLI reads as "authentication refused" and answers
// with advice to resume). Tokens that are not the upload's own are refused as before.
func TestExpiredUploadPart(t *testing.T) {
	e := newGoldenEnv(t, discard{}, "")
	id, toks, _ := e.init(t, `{"filename":"old.bin","total_size":1048586}`)
	other, _, _ := e.init(t, `{"filename":"other.bin","total_size":10}`)
	if ok, err := e.db.MarkExpired(context.Background(), id, time.Now(), nil); err != nil || !ok {
		t.Fatalf("mark expired: %v %v", ok, err)
	}
	past := time.Now().Add(-time.Minute)
	issue := func(tk *auth.Tokens, id string, n int, size int64) string {
		tok, err := tk.Issue(id, n, size, past)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	forger := auth.NewTokens(strings.Repeat("f", 32))
	body := strings.Repeat("x", chunk)
	tests := map[string]struct {
		token  string
		part   string
		status int
		code   string
	}{
		"own token, expired":              {issue(e.tokens, id, 0, chunk), "0", 410, "upload_expired"},
		"own token of another part":       {issue(e.tokens, id, 1, 10), "0", 410, "upload_expired"},
		"init token, not yet expired":     {toks[0], "0", 410, "upload_expired"},
		"expired token of another upload": {issue(e.tokens, other, 0, 10), "0", 401, "token_expired"},
		"forged expired token":            {issue(forger, id, 0, chunk), "0", 401, "invalid_token"},
		"expired token, bad part number":  {issue(e.tokens, id, 0, chunk), "x", 410, "upload_expired"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status, raw := e.call(t, call{"PUT", "/upload/" + id + "/part/" + tc.part,
				map[string]string{"Authorization": "Bearer " + tc.token}, body})
			var eb struct {
				Code   string `json:"code"`
				Status int    `json:"status"`
			}
			if err := json.Unmarshal(raw, &eb); err != nil {
				t.Fatal(err)
			}
			if status != tc.status || eb.Code != tc.code || eb.Status != tc.status {
				t.Fatalf("answered %d, want %d %s: %s", status, tc.status, tc.code, raw)
			}
		})
	}
	// A forged token is refused whatever the state of the upload it names, and nothing of
	// an expired upload is accepted.
	v, err := e.svc.Status(context.Background(), id, true)
	if err != nil || v.Upload.UploadedParts != 0 {
		t.Fatalf("expired upload after the attempts: %+v %v", v, err)
	}
}
