package harness

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SignToken encodes a JWT signed with alg ("HS256", "HS512" or "none").
func SignToken(secret, alg string, claims map[string]any) string {
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
		panic("SignToken: unsupported alg " + alg)
	}
	m := hmac.New(h, []byte(secret))
	m.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(m.Sum(nil))
}

// PartClaims are the claims of a part token.
func PartClaims(uploadID string, part int, expectedSize int64, exp time.Time) map[string]any {
	return map[string]any{"upload_id": uploadID, "part_number": part, "expected_size": expectedSize, "exp": exp.Unix()}
}

// ForgeToken signs a part token with the hosts' JWTSecret.
func ForgeToken(uploadID string, part int, expectedSize int64, exp time.Time) string {
	return SignToken(JWTSecret, "HS256", PartClaims(uploadID, part, expectedSize, exp))
}

// CheckToken asserts that tok is an HS256 JWT signed with JWTSecret with exactly the claims
// upload_id, part_number, expected_size and exp.
func CheckToken(tb testing.TB, tok, uploadID string, part int, expectedSize int64, exp time.Time) {
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
	m := hmac.New(sha256.New, []byte(JWTSecret))
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

// ParseTime asserts s is RFC 3339 in UTC with a Z suffix and whole seconds.
func ParseTime(tb testing.TB, field, s string) time.Time {
	tb.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil || !rfc3339Z.MatchString(s) {
		tb.Errorf("%s = %q, want RFC 3339 UTC with Z and whole seconds", field, s)
	}
	return ts
}

// RandomBytes returns n deterministic pseudo-random bytes.
func RandomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8(Seed(seed))
	_, _ = r.Read(b)
	return b
}

// Seed is the ChaCha8 seed of RandomBytes for seed, for streams of the same bytes.
func Seed(seed uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

// SHA256Hex is the hex SHA-256 of b.
func SHA256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// FileSHA256 hashes a file and returns its hex SHA-256 and size; "" and -1 when it cannot be
// read.
func FileSHA256(path string) (string, int64) {
	f, err := os.Open(path)
	if err != nil {
		return "", -1
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", -1
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// PartData cuts data into parts of chunk bytes (the last one shorter).
func PartData(data []byte, chunk int) [][]byte {
	var parts [][]byte
	for off := 0; off < len(data); off += chunk {
		parts = append(parts, data[off:min(off+chunk, len(data))])
	}
	return parts
}

// ChunkedBody hides a reader's length from net/http so that the body is sent with
// Transfer-Encoding: chunked.
type ChunkedBody struct{ io.Reader }

// VisibleFiles returns files without the hidden files of unfinished part-wise objects
// (".name.<id>.partial" and ".journal", see sdk/partfile): a part written into such a file
// by the host (sdk.PartFiles) and then refused may leave bytes there, never a receipt, so
// only what is visible must stay as it was.
func VisibleFiles(files map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range files {
		if !strings.HasPrefix(path.Base(k), ".") {
			out[k] = v
		}
	}
	return out
}

// RegularFiles lists the regular files under root (relative slash path → size). A missing
// root is empty.
func RegularFiles(tb testing.TB, root string) map[string]int64 {
	tb.Helper()
	files := map[string]int64{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, path)
		files[filepath.ToSlash(rel)] = fi.Size()
		return nil
	})
	if err != nil {
		tb.Fatalf("listing %s: %v", root, err)
	}
	return files
}

// StagedFiles lists the names in TEMP_STORAGE_PATH/<id> (nil when the directory does not
// exist).
func (h *Host) StagedFiles(tb testing.TB, id string) []string {
	tb.Helper()
	entries, err := os.ReadDir(filepath.Join(h.Staging(), id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// WaitFor polls cond every 20 ms until it holds or timeout passes, and reports whether it
// held.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
