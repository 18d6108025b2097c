package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
)

const secret = "0123456789abcdef0123456789abcdef"

func TestAPIKey(t *testing.T) {
	k := NewAPIKey("the-right-key-123")
	tests := map[string]struct {
		in   string
		want host.Code
	}{
		"right":   {"the-right-key-123", ""},
		"missing": {"", host.CodeMissingAPIKey},
		"wrong":   {"the-right-key-124", host.CodeInvalidAPIKey},
		"prefix":  {"the-right-key-12", host.CodeInvalidAPIKey},
		"longer":  {"the-right-key-1234", host.CodeInvalidAPIKey},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := k.Check(tc.in)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if got := host.ErrorCode(err); got != tc.want {
				t.Fatalf("code = %q, want %q (err %v)", got, tc.want, err)
			}
		})
	}
}

// forge signs an arbitrary header and payload with key, so tests can build tokens the
// issuer never would.
func forge(header, payload string, key []byte) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return s + "." + enc.EncodeToString(m.Sum(nil))
}

func TestTokens(t *testing.T) {
	tk := NewTokens(secret)
	now := time.Now()
	good, err := tk.Issue("u1", 3, 1024, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := tk.Issue("u1", 3, 1024, now.Add(-time.Second))
	other, _ := NewTokens(secret+"x").Issue("u1", 3, 1024, now.Add(time.Hour))
	exp := now.Add(time.Hour).Unix()
	payload := `{"upload_id":"u1","part_number":3,"expected_size":1024,"exp":` + itoa(exp) + `}`
	enc := base64.RawURLEncoding
	none := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(payload)) + "."
	hs512 := forge(`{"alg":"HS512","typ":"JWT"}`, payload, []byte(secret))
	noExp := forge(`{"alg":"HS256","typ":"JWT"}`, `{"upload_id":"u1","part_number":3,"expected_size":1024}`, []byte(secret))
	noID := forge(`{"alg":"HS256","typ":"JWT"}`, `{"part_number":3,"expected_size":1024,"exp":`+itoa(exp)+`}`, []byte(secret))

	tests := map[string]struct {
		token string
		want  host.Code
	}{
		"good":          {good, ""},
		"expired":       {expired, host.CodeTokenExpired},
		"other secret":  {other, host.CodeInvalidToken},
		"alg none":      {none, host.CodeInvalidToken},
		"alg HS512":     {hs512, host.CodeInvalidToken},
		"no exp":        {noExp, host.CodeInvalidToken},
		"no upload id":  {noID, host.CodeInvalidToken},
		"garbage":       {"not.a.token", host.CodeInvalidToken},
		"empty":         {"", host.CodeInvalidToken},
		"truncated sig": {good[:len(good)-4], host.CodeInvalidToken},
	}
	// The signature's 32 bytes take 43 base64url characters; the last one carries 4 bits
	// and 2 that must be zero. Setting those gives the same bytes spelled otherwise
	// (found by FuzzVerify): not a token the server issued.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, good[len(good)-1])
	for low := 1; low < 4; low++ {
		respelled := good[:len(good)-1] + string(alphabet[last&^3|low])
		tests["signature respelled "+strconv.Itoa(low)] = struct {
			token string
			want  host.Code
		}{respelled, host.CodeInvalidToken}
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := tk.Verify(tc.token)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.UploadID != "u1" || c.PartNumber != 3 || c.ExpectedSize != 1024 {
					t.Fatalf("claims = %+v", c)
				}
				return
			}
			if got := host.ErrorCode(err); got != tc.want {
				t.Fatalf("code = %q, want %q (err %v)", got, tc.want, err)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// ExpiredClaims names the upload of a token this secret signed that only expired, and of
// nothing else.
func TestExpiredClaims(t *testing.T) {
	tk := NewTokens(secret)
	now := time.Now()
	expired, _ := tk.Issue("u1", 3, 1024, now.Add(-time.Hour))
	good, _ := tk.Issue("u1", 3, 1024, now.Add(time.Hour))
	other, _ := NewTokens(secret+"x").Issue("u1", 3, 1024, now.Add(-time.Hour))
	past := now.Add(-time.Hour).Unix()
	enc := base64.RawURLEncoding
	payload := `{"upload_id":"u1","part_number":3,"expected_size":1024,"exp":` + itoa(past) + `}`
	none := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(payload)) + "."
	hs512 := forge(`{"alg":"HS512","typ":"JWT"}`, payload, []byte(secret))
	noID := forge(`{"alg":"HS256","typ":"JWT"}`, `{"part_number":3,"expected_size":1024,"exp":`+itoa(past)+`}`, []byte(secret))

	c, ok := tk.ExpiredClaims(expired)
	if !ok || c.UploadID != "u1" || c.PartNumber != 3 || c.ExpectedSize != 1024 {
		t.Fatalf("expired token: %+v %v", c, ok)
	}
	for name, tok := range map[string]string{
		"valid": good, "other secret": other, "alg none": none, "alg HS512": hs512, "no upload id": noID,
		"truncated sig": expired[:len(expired)-4], "garbage": "a.b.c",
	} {
		if c, ok := tk.ExpiredClaims(tok); ok || c != nil {
			t.Errorf("%s: ExpiredClaims = %+v, true", name, c)
		}
	}
}

// An issued token with bytes the base64 decoder would skip (line breaks) is not the same
// token: it is refused, as the fuzzer found it accepted.
func TestTokenWithLineBreaksRefused(t *testing.T) {
	tk := NewTokens(secret)
	good, err := tk.Issue("u1", 3, 1024, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{good + "\n", good[:10] + "\r\n" + good[10:], good + " ", good + "=", "\n" + good} {
		if _, err := tk.Verify(bad); host.ErrorCode(err) != host.CodeInvalidToken {
			t.Errorf("Verify(%q) = %v, want invalid_token", bad, err)
		}
	}
	expired, _ := tk.Issue("u1", 3, 1024, time.Now().Add(-time.Hour))
	if _, ok := tk.ExpiredClaims(expired + "\n"); ok {
		t.Error("ExpiredClaims took an expired token with a line break")
	}
	if _, err := tk.Verify(good); err != nil {
		t.Errorf("the issued token itself: %v", err)
	}
}
