package tus

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// locations signs and verifies the URLs of tus uploads. The URL of an upload is
// /files/<upload id>.<mac>, mac being an HMAC-SHA256 of the id under a key derived from
// JWT_SECRET: it is a capability for that one upload (HEAD, PATCH, DELETE), which an
// application's backend can hand to a browser without the API key. It is valid as long as
// the upload is: an expired, cancelled or delivered upload takes no more bytes.
type locations struct {
	key []byte
}

func newLocations(secret string) locations {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("chunked-uploader tus location v1"))
	return locations{key: m.Sum(nil)}
}

func (l locations) mac(id string) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// token returns the last path segment of upload id's URL.
func (l locations) token(id string) string { return id + "." + l.mac(id) }

// verify returns the upload id of a path segment made by token, or false.
func (l locations) verify(segment string) (string, bool) {
	id, mac, ok := strings.Cut(segment, ".")
	if !ok || id == "" || len(id) > 64 {
		return "", false
	}
	if !hmac.Equal([]byte(mac), []byte(l.mac(id))) {
		return "", false
	}
	return id, true
}
