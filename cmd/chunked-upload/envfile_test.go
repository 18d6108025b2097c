package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// keyRecorder is a server that refuses every request with 401 and records the API keys sent.
func keyRecorder(t *testing.T) (url string, keys func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("X-API-Key"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"invalid API key","code":"invalid_api_key","status":401}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// TestDotEnvReadAsTheServerReadsIt: the CLI takes API_KEY from ./.env with the server's
// reader (host/dotenv). The CLI's own reader took the first API_KEY line where the server
// takes the last, kept the backslashes of a double-quoted value, and read a file the server
// refuses.
func TestDotEnvReadAsTheServerReadsIt(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		content string
		want    string // key sent; "" for a usage error
		msg     string // in stderr for a usage error
	}{
		"export and single quotes": {"# c\nexport API_KEY='key with # inside'\n", "key with # inside", ""},
		"trailing comment":         {"API_KEY=plain-key # the key\n", "plain-key", ""},
		"last line wins":           {"API_KEY=old-key\nAPI_KEY=new-key\n", "new-key", ""},
		"double quotes unescaped":  {`API_KEY="a\"b\\c"` + "\n", `a"b\c`, ""},
		"not set":                  {"JWT_SECRET=x\n", "", "no API key"},
		"malformed":                {"API_KEY=k\nnot a setting\n", "", ".env: line 2: expected KEY=VALUE"},
		"unterminated quote":       {"API_KEY='k\n", "", ".env: line 1: unterminated quote"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), ".env")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			url, keys := keyRecorder(t)
			var out, errOut strings.Builder
			e := &env{stdout: &out, stderr: &errOut, dotenv: path, getenv: func(k string) string {
				return map[string]string{"CHUNKED_UPLOADER_URL": url}[k]
			}}
			code := run(context.Background(), []string{"status", "some-id"}, e)
			if tc.want == "" {
				if code != exitUsage || len(keys()) != 0 || !strings.Contains(errOut.String(), tc.msg) {
					t.Fatalf("exit %d, keys sent %q, stderr %q; want exit 2 with %q and no request", code, keys(), errOut.String(), tc.msg)
				}
				return
			}
			if got := keys(); code != exitAuth || len(got) != 1 || got[0] != tc.want {
				t.Fatalf("exit %d, keys sent %q, stderr %q; want exit 3 and %q", code, got, errOut.String(), tc.want)
			}
		})
	}
}

// A missing .env is no error: the key then has to come from elsewhere.
func TestDotEnvMissing(t *testing.T) {
	t.Parallel()
	url, keys := keyRecorder(t)
	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut, dotenv: filepath.Join(t.TempDir(), ".env"), getenv: func(k string) string {
		return map[string]string{"CHUNKED_UPLOADER_URL": url, "API_KEY": "env-key"}[k]
	}}
	if code := run(context.Background(), []string{"status", "some-id"}, e); code != exitAuth || len(keys()) != 1 || keys()[0] != "env-key" {
		t.Fatalf("exit %d, keys %q, stderr %q; want exit 3 with env-key", code, keys(), errOut.String())
	}
}
