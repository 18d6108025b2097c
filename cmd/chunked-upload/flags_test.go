package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		args     []string
		wantPos  []string
		wantPath string
		wantJSON bool
	}{
		"flags after":    {[]string{"f.bin", "--path", "a/b", "--json"}, []string{"f.bin"}, "a/b", true},
		"flags before":   {[]string{"--path=a", "f.bin"}, []string{"f.bin"}, "a", false},
		"flags between":  {[]string{"id", "--json", "f.bin"}, []string{"id", "f.bin"}, "", true},
		"after --":       {[]string{"--", "--json"}, []string{"--json"}, "", false},
		"single dash ok": {[]string{"-path", "x", "f"}, []string{"f"}, "x", false},
	}
	for name, tc := range tests {
		var g globals
		fs := newFlagSet("t", &g)
		path := fs.String("path", "", "")
		names := make([]string, len(tc.wantPos))
		pos, err := parse(fs, &g, tc.args, names...)
		if err != nil || !slices.Equal(pos, tc.wantPos) || *path != tc.wantPath || g.json != tc.wantJSON {
			t.Errorf("%s: pos %q path %q json %v err %v", name, pos, *path, g.json, err)
		}
	}
}

// fakeAPI answers every request with 401, recording the API keys it got.
func fakeAPI(t *testing.T, keys *[]string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*keys = append(*keys, r.Header.Get("X-API-Key"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		w.Write([]byte(`{"error":"invalid API key","code":"invalid_api_key","status":401}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAPIKeySources: --api-key wins over $API_KEY, which wins over ./.env; the key is never
// printed.
func TestAPIKeySources(t *testing.T) {
	t.Parallel()
	dotenv := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(dotenv, []byte("# comment\nJWT_SECRET=x\nexport API_KEY='from-dotenv-key'\n"), 0o600)
	tests := map[string]struct {
		flag, envKey, dotenv, want string
	}{
		"flag":    {"from-flag-key", "from-env-key", dotenv, "from-flag-key"},
		"env":     {"", "from-env-key", dotenv, "from-env-key"},
		"dotenv":  {"", "", dotenv, "from-dotenv-key"},
		"no .env": {"", "", filepath.Join(t.TempDir(), "missing"), ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var keys []string
			url := fakeAPI(t, &keys)
			var out, errOut strings.Builder
			e := &env{stdout: &out, stderr: &errOut, dotenv: tc.dotenv, getenv: func(k string) string {
				return map[string]string{"API_KEY": tc.envKey, "CHUNKED_UPLOADER_URL": url}[k]
			}}
			args := []string{"status", "some-id"}
			if tc.flag != "" {
				args = append([]string{"--api-key", tc.flag}, args...)
			}
			code := run(context.Background(), args, e)
			if tc.want == "" {
				if code != exitUsage || len(keys) != 0 || !strings.Contains(errOut.String(), "no API key") {
					t.Fatalf("exit %d, %d requests, stderr %q; want a usage error without requests", code, len(keys), errOut.String())
				}
				return
			}
			if code != exitAuth || !slices.Equal(keys, []string{tc.want}) {
				t.Fatalf("exit %d, keys sent %q; want exit 3 and %q", code, keys, tc.want)
			}
			for _, k := range []string{tc.flag, tc.envKey, "from-dotenv-key"} {
				if k != "" && strings.Contains(out.String()+errOut.String(), k) {
					t.Errorf("output shows the key %q: %s%s", k, out.String(), errOut.String())
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		args     []string
		wantCode int
		wantOut  string // in stdout (help) or stderr
	}{
		"no command":       {nil, exitUsage, "Commands:"},
		"help":             {[]string{"help"}, exitOK, "Exit codes:"},
		"-h":               {[]string{"-h"}, exitOK, "Exit codes:"},
		"upload -h":        {[]string{"upload", "-h"}, exitOK, "Exit codes:"},
		"unknown command":  {[]string{"frob"}, exitUsage, `unknown command "frob"`},
		"unknown flag":     {[]string{"upload", "--frob", "f"}, exitUsage, "flag provided but not defined"},
		"missing file":     {[]string{"upload"}, exitUsage, "upload needs FILE"},
		"extra arg":        {[]string{"status", "a", "b"}, exitUsage, "status needs ID"},
		"resume needs two": {[]string{"resume", "id"}, exitUsage, "resume needs ID FILE"},
		"bad concurrency":  {[]string{"--api-key", "k", "upload", "f", "--concurrency", "0"}, exitUsage, "--concurrency"},
		"bad server":       {[]string{"--server", "localhost:1", "health"}, exitUsage, "base URL"},
	}
	for name, tc := range tests {
		var out, errOut strings.Builder
		e := &env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
		code := run(context.Background(), tc.args, e)
		if code != tc.wantCode || !strings.Contains(out.String()+errOut.String(), tc.wantOut) {
			t.Errorf("%s: exit %d (want %d), output:\n%s%s", name, code, tc.wantCode, out.String(), errOut.String())
		}
	}
}
