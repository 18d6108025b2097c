package plugintest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// HealthCase is a health check with settings changed from working ones.
type HealthCase struct {
	Change func(sdk.Config) // what goes wrong
	Want   error            // the sentinel Health's error must wrap; nil: Health succeeds
	Text   string           // what its message must say, for an operator
}

// RunHealthCases runs each case as a subtest: it changes a copy of base, opens a backend
// with it and calls Health, which must fail with the case's sentinel and text (or succeed
// when Want is nil). open fails the test when the backend cannot be built.
func RunHealthCases(t *testing.T, base sdk.Config, open func(*testing.T, sdk.Config) sdk.HealthChecker, cases map[string]HealthCase) {
	t.Helper()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := sdk.Config{}
			for k, v := range base {
				cfg[k] = v
			}
			tc.Change(cfg)
			err := open(t, cfg).Health(t.Context())
			switch {
			case tc.Want == nil && err != nil:
				t.Fatalf("Health: %v", err)
			case tc.Want != nil && !errors.Is(err, tc.Want):
				t.Fatalf("Health: got %v, want an error wrapping %v", err, tc.Want)
			case tc.Want != nil && !strings.Contains(err.Error(), tc.Text):
				t.Errorf("Health: message %q does not say %q", err, tc.Text)
			}
			t.Logf("Health: %v", err)
		})
	}
}

// Pattern returns n bytes that differ from one 32-byte block to the next (a chain of
// SHA-256 digests), the same on every call.
func Pattern(n int) []byte {
	b := make([]byte, n)
	seed := sha256.Sum256([]byte("pattern"))
	for i := 0; i < n; i += len(seed) {
		copy(b[i:], seed[:])
		seed = sha256.Sum256(seed[:])
	}
	return b
}

// BlockReader yields N bytes by repeating Block, cheaply: content for benchmarks that must
// not measure their source.
type BlockReader struct {
	Block []byte
	N     int64
	off   int64
}

// NewBlockReader returns a BlockReader of n bytes repeating 1 MiB of random bytes.
func NewBlockReader(n int64) *BlockReader {
	b := make([]byte, 1<<20)
	_, _ = rand.Read(b)
	return &BlockReader{Block: b, N: n}
}

func (r *BlockReader) Read(p []byte) (int, error) {
	if r.off >= r.N {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.N-r.off)]
	m := copy(p, r.Block[r.off%int64(len(r.Block)):])
	r.off += int64(m)
	return m, nil
}

// RequireEnv returns the values of the environment variables names, which tell a test
// where a real service (what) is. When one is empty the test fails, saying how to start
// the repository's test services: such tests must not pass without their service. Only
// under -short (a quick local loop, never CI) does it skip the test instead.
func RequireEnv(t testing.TB, what string, names ...string) []string {
	t.Helper()
	values := make([]string, len(names))
	for i, n := range names {
		values[i] = os.Getenv(n)
		if values[i] != "" {
			continue
		}
		if testing.Short() {
			t.Skip("no test server configured; skipped under -short only (without -short this fails)")
		}
		t.Fatalf("%s not set: these tests need a real %s.\n"+
			"Run `scripts/test-services.sh start` and `. /tmp/chunked-uploader-svc/env.sh` from the repository root first.",
			strings.Join(names, ", "), what)
	}
	return values
}

// ConfigCase is a table row for a plugin's settings parser.
type ConfigCase[C comparable] struct {
	In  sdk.Config
	Bad bool // In must be refused with an error wrapping sdk.ErrInvalidConfig
	// Check, if set, checks what In parsed to; else it must equal Want, unless Want is
	// the zero C (the case only checks that In is taken).
	Check func(t *testing.T, got C)
	Want  C
}

// RunConfigCases runs each case as a subtest of parse, which turns settings into a
// plugin's configuration.
func RunConfigCases[C comparable](t *testing.T, parse func(sdk.Config) (C, error), cases map[string]ConfigCase[C]) {
	t.Helper()
	var zero C
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := parse(tc.In)
			switch {
			case tc.Bad && !errors.Is(err, sdk.ErrInvalidConfig):
				t.Fatalf("got %+v, %v; want an error wrapping ErrInvalidConfig", c, err)
			case tc.Bad:
				t.Logf("refused: %v", err)
			case err != nil:
				t.Fatalf("parsing the settings: %v", err)
			case tc.Check != nil:
				tc.Check(t, c)
			case tc.Want != zero && c != tc.Want:
				t.Errorf("got %+v, want %+v", c, tc.Want)
			}
		})
	}
}

// CancelAfter returns a reader of r that calls cancel once n bytes were read from it, and
// then hands out a byte a read: a client that goes away in the middle of a part.
func CancelAfter(r io.Reader, n int, cancel context.CancelFunc) io.Reader {
	return &cancelAfter{r: r, n: n, cancel: cancel}
}

type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	m, err := c.r.Read(p[:min(len(p), max(c.n, 1))])
	c.n -= m
	return m, err
}
