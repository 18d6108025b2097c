package opstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// readmeBlock returns the Go code between <!-- opstest:NAME --> and <!-- /opstest:NAME --> in
// sdk/README.md, so that the documented plugin and its test are the code tested here.
func readmeBlock(tb testing.TB, name string) string {
	tb.Helper()
	path := filepath.Join(repoRoot(tb), "sdk", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- opstest:" + regexp.QuoteMeta(name) + " -->\\s*```go\\n(.*?)\\n```\\s*<!-- /opstest:" + regexp.QuoteMeta(name) + " -->")
	m := re.FindSubmatch(b)
	if m == nil {
		tb.Fatalf("%s: no ```go block between <!-- opstest:%s --> and <!-- /opstest:%s -->", path, name, name)
	}
	return string(m[1]) + "\n"
}

// pluginModule writes a Go module example.com/memo-plugin in a fresh directory outside the
// repository's modules, with files (path → content), requiring the sdk of this repository
// through replace directives, and returns its directory. go.sum starts from the sdk's and
// proto's, so no download is needed when the module cache has their dependencies.
func pluginModule(tb testing.TB, files map[string]string) string {
	tb.Helper()
	root := repoRoot(tb)
	dir := filepath.Join(tb.TempDir(), "memo-plugin")
	writeFile(tb, filepath.Join(dir, "go.mod"), fmt.Sprintf(`module example.com/memo-plugin

go 1.26

require github.com/chunked-uploader/chunked-uploader/sdk v0.0.0

replace (
	github.com/chunked-uploader/chunked-uploader/sdk => %s
	github.com/chunked-uploader/chunked-uploader/proto => %s
)
`, filepath.Join(root, "sdk"), filepath.Join(root, "proto")), 0o644)
	var sums []string
	for _, m := range []string{"sdk", "proto"} {
		b, err := os.ReadFile(filepath.Join(root, m, "go.sum"))
		if err != nil && !os.IsNotExist(err) {
			tb.Fatal(err)
		}
		sums = append(sums, strings.Split(strings.TrimSpace(string(b)), "\n")...)
	}
	slices.Sort(sums)
	sums = slices.Compact(slices.DeleteFunc(sums, func(s string) bool { return s == "" }))
	writeFile(tb, filepath.Join(dir, "go.sum"), strings.Join(sums, "\n")+"\n", 0o644)
	for name, content := range files {
		writeFile(tb, filepath.Join(dir, name), content, 0o644)
	}
	return dir
}

// moduleEnv is the environment for go commands in a plugin module: on its own (no go.work),
// allowed to complete go.mod and go.sum from the module cache.
var moduleEnv = []string{"GOWORK=off", "GOFLAGS=-mod=mod"}

// TestCustomPlugin builds the plugin of sdk/README.md in a module of its own, runs its
// conformance test (also from the README), and runs the host with it: settings reach it
// through Configure (MEMO_ROOT), a file of 3.5 parts is uploaded and delivered under
// MEMO_ROOT, and the plugin process has none of the host's secrets in its environment.
func TestCustomPlugin(t *testing.T) {
	bins := harness.BinDir()
	mod := pluginModule(t, map[string]string{
		"main.go":      readmeBlock(t, "main.go"),
		"main_test.go": readmeBlock(t, "main_test.go"),
	})

	// The README's conformance test, as a plugin author runs it.
	args := []string{"test", "-count=1"}
	if testing.Short() {
		args = append(args, "-short")
	}
	goTest := exec.Command("go", append(args, ".")...)
	goTest.Dir = mod
	goTest.Env = append(append(os.Environ(), moduleEnv...), "CGO_ENABLED=0")
	if out, err := goTest.CombinedOutput(); err != nil {
		t.Fatalf("go test in the plugin module (the conformance test of sdk/README.md): %v\n%s", err, out)
	}

	// PLUGIN_DIR is not set: the host finds the plugin next to its own binary.
	appDir := filepath.Join(t.TempDir(), "app")
	if err := os.MkdirAll(appDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := harness.GoBuild(mod, filepath.Join(appDir, harness.PluginPrefix+"memo"), ".", moduleEnv); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(bins, harness.HostBinary), filepath.Join(appDir, harness.HostBinary), 0o755)

	work := t.TempDir()
	memoRoot := filepath.Join(work, "memo-root")
	env := hostEnv(t, work)
	delete(env, "LOCAL_STORAGE_PATH")
	delete(env, "JWT_SECRET") // from .env below: secrets from either source must stay in the host
	env["STORAGE_BACKEND"] = "memo"
	env["MEMO_ROOT"] = memoRoot
	env["OPSTEST_HOST_ONLY"] = "host-environment-marker"
	writeFile(t, filepath.Join(work, ".env"), "JWT_SECRET="+harness.JWTSecret+"\nWEBHOOK_SECRET=opstest-webhook-secret-value\n", 0o600)
	host := harness.Exec(t, filepath.Join(appDir, harness.HostBinary), nil, work, t.TempDir(), env)
	host.WaitHealthy(t)

	var health harness.HealthResponse
	call(t, http.MethodGet, host.Base+"/health", nil, nil, http.StatusOK, &health)
	if health.Storage.BackendType != "memo" || health.Storage.Status != "healthy" {
		t.Errorf("GET /health: storage %+v, want backend_type memo, healthy", health.Storage)
	}

	// The plugin's environment: go-plugin's variables, none of the host's secrets or other settings.
	var plugins []int
	for _, pid := range harness.Children(t, host.PID()) {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && filepath.Base(exe) == harness.PluginPrefix+"memo" {
			plugins = append(plugins, pid)
		}
	}
	if len(plugins) != 1 {
		t.Fatalf("found %d plugin processes (%v) under the host (pid %d), want 1", len(plugins), plugins, host.PID())
	}
	penv := environ(t, plugins[0])
	joined := strings.Join(penv, "\n")
	if !strings.Contains(joined, "CHUNKED_UPLOADER_PLUGIN=") {
		t.Errorf("plugin environment lacks the handshake cookie; read the wrong process? %q", penv)
	}
	for _, secret := range []string{"API_KEY", "JWT_SECRET", "WEBHOOK_SECRET", "MEMO_ROOT", "OPSTEST_HOST_ONLY",
		harness.APIKey, harness.JWTSecret, "opstest-webhook-secret-value", "host-environment-marker"} {
		if strings.Contains(joined, secret) {
			t.Errorf("the plugin's environment contains %q:\n%s", secret, joined)
		}
	}

	// 3.5 parts of 1 MiB.
	data := make([]byte, 3<<20+1<<19)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	c := upload(t, host.Base, "reports/q3.bin", data)
	want := filepath.Join(memoRoot, "reports", c.FileID+"_q3.bin")
	if harness.Str(c.FinalPath) != want {
		t.Errorf("final_path = %q, want %q", harness.Str(c.FinalPath), want)
	}
	if c.StorageBackend != "memo" {
		t.Errorf("storage_backend = %q, want memo", c.StorageBackend)
	}
	got, err := os.ReadFile(want)
	if err != nil {
		t.Fatalf("the delivered file: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("the delivered file has %d bytes (sha256 %x), want %d bytes (sha256 %x)", len(got), sha256.Sum256(got), len(data), sha256.Sum256(data))
	}
	leftovers, _ := filepath.Glob(filepath.Join(memoRoot, "reports", ".memo-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	t.Run("MissingSetting", func(t *testing.T) {
		// The factory's error reaches the operator: the host refuses to start and names it.
		stderr := refusal(t, map[string]string{"PLUGIN_DIR": appDir, "STORAGE_BACKEND": "memo"})
		if !strings.Contains(stderr, "MEMO_ROOT is required") {
			t.Errorf("stderr does not say that MEMO_ROOT is required:\n%s", stderr)
		}
	})
}

// refusal starts the host and expects it to exit at start with a non-zero status; it returns
// the host's stderr.
func refusal(t *testing.T, env map[string]string) string {
	t.Helper()
	work := t.TempDir()
	for k, v := range hostEnv(t, work) {
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	p := harness.Exec(t, filepath.Join(harness.BinDir(), harness.HostBinary), nil, work, t.TempDir(), env)
	code := p.WaitExit(t, time.Minute)
	stderr := p.Stderr()
	t.Logf("exit status %d, stderr:\n%s", code, stderr)
	if code == 0 {
		t.Errorf("the host exited with status 0, want a failure")
	}
	return stderr
}

// TestPluginSHA256 pins the local plugin: the host starts it when PLUGIN_SHA256 matches and
// refuses a tampered copy with an error naming PLUGIN_SHA256.
func TestPluginSHA256(t *testing.T) {
	bins := harness.BinDir()
	orig, err := os.ReadFile(filepath.Join(bins, harness.PluginPrefix+"local"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(orig)
	digest := hex.EncodeToString(sum[:])

	t.Run("Match", func(t *testing.T) {
		dir := t.TempDir()
		copyFile(t, filepath.Join(bins, harness.PluginPrefix+"local"), filepath.Join(dir, harness.PluginPrefix+"local"), 0o755)
		work := t.TempDir()
		env := hostEnv(t, work)
		env["PLUGIN_DIR"] = dir
		env["PLUGIN_SHA256"] = strings.ToUpper(digest) // as some tools print it
		p := harness.Exec(t, filepath.Join(bins, harness.HostBinary), nil, work, t.TempDir(), env)
		p.WaitHealthy(t)
		c := upload(t, p.Base, "pinned.bin", []byte("pinned plugin\n"))
		if b, err := os.ReadFile(harness.Str(c.FinalPath)); err != nil || string(b) != "pinned plugin\n" {
			t.Errorf("delivered file %s: %q, %v", harness.Str(c.FinalPath), b, err)
		}
	})

	t.Run("Tampered", func(t *testing.T) {
		dir := t.TempDir()
		// Still a working executable, but not the pinned one.
		if err := os.WriteFile(filepath.Join(dir, harness.PluginPrefix+"local"), append(slices.Clone(orig), 0), 0o755); err != nil {
			t.Fatal(err)
		}
		stderr := refusal(t, map[string]string{"PLUGIN_DIR": dir, "PLUGIN_SHA256": digest})
		if !strings.Contains(stderr, "PLUGIN_SHA256") {
			t.Errorf("stderr does not mention PLUGIN_SHA256:\n%s", stderr)
		}
	})
}

// v2Plugin is a plugin that speaks storage protocol version 2 (which does not exist yet): the
// sdk's handshake with another ProtocolVersion, served with go-plugin directly.
const v2Plugin = `package main

import (
	"context"

	"github.com/hashicorp/go-plugin"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

func main() {
	handshake := sdk.Handshake
	handshake.ProtocolVersion = 2
	factory := func(context.Context, sdk.Config, sdk.Logger) (sdk.Storage, error) { return nil, sdk.ErrNotSupported }
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         plugin.PluginSet{sdk.PluginName: &sdk.Plugin{Name: "future", Factory: factory}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}
`

// TestProtocolVersionMismatch: a plugin of another protocol version is refused at start with
// an error that names the versions.
func TestProtocolVersionMismatch(t *testing.T) {
	mod := pluginModule(t, map[string]string{"future/main.go": v2Plugin})
	dir := t.TempDir()
	if err := harness.GoBuild(mod, filepath.Join(dir, harness.PluginPrefix+"future"), "./future", moduleEnv); err != nil {
		t.Fatal(err)
	}
	stderr := refusal(t, map[string]string{"PLUGIN_DIR": dir, "STORAGE_BACKEND": "future"})
	for _, want := range []string{"future", "version", "2"} {
		if !strings.Contains(strings.ToLower(stderr), want) {
			t.Errorf("stderr does not mention %q:\n%s", want, stderr)
		}
	}
}
