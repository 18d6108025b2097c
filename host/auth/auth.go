// Package auth checks the API key and issues and verifies part tokens.
//
// A part token is an HS256 JWT with exactly the claims upload_id, part_number,
// expected_size and exp (the upload's expiry), as the earlier server issued them. It is
// useless for any other part or upload. Only HS256 is accepted: "none" and every other
// algorithm are refused before the signature is looked at.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// APIKey checks X-API-Key values in constant time.
type APIKey struct {
	sum [32]byte
}

// NewAPIKey returns a checker for key.
func NewAPIKey(key string) *APIKey { return &APIKey{sum: sha256.Sum256([]byte(key))} }

// Check returns nil if presented is the key, else a *host.Error (missing_api_key or
// invalid_api_key). Comparing digests keeps the time independent of length and content.
func (a *APIKey) Check(presented string) error {
	if presented == "" {
		return host.Errorf(host.CodeMissingAPIKey, "missing API key: send it in the X-API-Key header")
	}
	sum := sha256.Sum256([]byte(presented))
	if subtle.ConstantTimeCompare(sum[:], a.sum[:]) != 1 {
		return host.Errorf(host.CodeInvalidAPIKey, "invalid API key")
	}
	return nil
}

// PartClaims are the claims of a part token.
type PartClaims struct {
	UploadID     string `json:"upload_id"`
	PartNumber   int    `json:"part_number"`
	ExpectedSize int64  `json:"expected_size"`
	jwt.RegisteredClaims
}

// Tokens issues and verifies part tokens.
type Tokens struct {
	secret []byte
	parser *jwt.Parser
	now    func() time.Time
}

// NewTokens returns a token issuer/verifier for secret.
func NewTokens(secret string) *Tokens {
	t := &Tokens{secret: []byte(secret), now: time.Now}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return t.now() }),
		// One spelling per token: base64url with non-zero trailing bits (the last
		// character of a segment changed without changing the bytes) is refused.
		jwt.WithStrictDecoding(),
	)
	return t
}

// Issue returns the token of part n of upload id, which is sizeBytes long, valid until expires.
func (t *Tokens) Issue(id string, n int, size int64, expires time.Time) (string, error) {
	claims := PartClaims{
		UploadID: id, PartNumber: n, ExpectedSize: size,
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(expires)},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
	if err != nil {
		return "", fmt.Errorf("sign part token: %w", err)
	}
	return s, nil
}

// Verify checks a token's algorithm, signature and expiry and returns its claims, or a
// *host.Error: token_expired for an expired token, invalid_token for everything else.
func (t *Tokens) Verify(token string) (*PartClaims, error) {
	if !canonical(token) {
		return nil, host.Errorf(host.CodeInvalidToken, "invalid part token: not three base64url segments")
	}
	var claims PartClaims
	_, err := t.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return t.secret, nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, host.Errorf(host.CodeTokenExpired, "part token expired: the upload expired")
	default:
		return nil, host.Wrap(err, host.CodeInvalidToken, "invalid part token")
	}
	if claims.UploadID == "" || claims.PartNumber < 0 || claims.ExpectedSize < 0 {
		return nil, host.Errorf(host.CodeInvalidToken, "invalid part token: claims missing")
	}
	return &claims, nil
}

// ExpiredClaims returns the claims of a token whose one fault is that it expired: its
// algorithm and signature are good (this secret signed it) and its claims are complete. It
// never authorises anything; it lets the caller name the expired upload the token was for
// (its expiry is the upload's). Any other token gives false.
func (t *Tokens) ExpiredClaims(token string) (*PartClaims, bool) {
	if !canonical(token) {
		return nil, false
	}
	var claims PartClaims
	_, err := t.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return t.secret, nil })
	// The parser checks the algorithm and the signature before the claims: an expiry error
	// means the signature was good.
	if err == nil || !errors.Is(err, jwt.ErrTokenExpired) || errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		return nil, false
	}
	if claims.UploadID == "" || claims.PartNumber < 0 || claims.ExpectedSize < 0 {
		return nil, false
	}
	return &claims, true
}

// canonical reports whether token is three segments of the base64url alphabet joined by
// dots, as Issue makes them: Go's base64 decoder skips CR and LF, so without this check an
// issued token with line breaks added (or any other bytes the decoder ignores) would be
// accepted as the same token.
func canonical(token string) bool {
	dots := 0
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c == '.':
			dots++
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots == 2
}
