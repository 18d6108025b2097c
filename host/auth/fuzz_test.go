package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// FuzzVerify: any string is refused with invalid_token or token_expired, or accepted only
// when it is a token this secret issued (which fuzzing cannot forge).
func FuzzVerify(f *testing.F) {
	tk := NewTokens(secret)
	good, _ := tk.Issue("u1", 3, 1024, time.Now().Add(time.Hour))
	expired, _ := tk.Issue("u1", 3, 1024, time.Now().Add(-time.Hour))
	for _, s := range []string{good, expired, "", ".", "..", "a.b.c", good + "x", strings.ToUpper(good),
		"eyJhbGciOiJub25lIn0.eyJ1cGxvYWRfaWQiOiJ1MSJ9.", strings.Replace(good, ".", "..", 1),
		good + "\n", good[:10] + "\r\n" + good[10:]} { // base64 decoding skips line breaks
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := tk.Verify(token)
		if err != nil {
			if c := host.ErrorCode(err); c != host.CodeInvalidToken && c != host.CodeTokenExpired {
				t.Fatalf("%q: code %s", token, c)
			}
			return
		}
		reissued, _ := tk.Issue(claims.UploadID, claims.PartNumber, claims.ExpectedSize, claims.ExpiresAt.Time)
		if claims.UploadID == "" || (token != good && token != reissued) {
			t.Fatalf("accepted a token the server did not issue: %q (%+v)", token, claims)
		}
	})
}
