package opstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// TestShellcheck: every shell script of the repository passes shellcheck.
func TestShellcheck(t *testing.T) {
	shellcheck := requireTool(t, "shellcheck", "shellcheck")
	root := repoRoot(t)
	files := []string{"deploy-linux.sh", "deploy-mac.sh", "init.sh", ".ci/run"}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	more, err := filepath.Glob(filepath.Join(root, "scripts", "*.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range more {
		rel, _ := filepath.Rel(root, m)
		files = append(files, rel)
	}
	cmd := exec.Command(shellcheck, files...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("shellcheck %s: %v\n%s", strings.Join(files, " "), err, out)
	}
	t.Logf("shellcheck passed: %s", strings.Join(files, " "))
}

// installDir makes an install directory parent/install for a deploy script: a copy of the
// script, bin/ with dummy executables for the host and the given plugins, and .env with the given
// content (none when empty). It returns the directory.
func installDir(t *testing.T, parent, script, dotenv string, plugins ...string) string {
	t.Helper()
	dir := filepath.Join(parent, "install")
	copyFile(t, filepath.Join(repoRoot(t), script), filepath.Join(dir, script), 0o755)
	copyFile(t, filepath.Join(repoRoot(t), "scripts", "dotenv.sh"), filepath.Join(dir, "scripts", "dotenv.sh"), 0o644)
	for _, name := range append([]string{harness.HostBinary}, prefixed(plugins)...) {
		writeFile(t, filepath.Join(dir, "bin", name), "#!/bin/sh\nexit 0\n", 0o755)
	}
	if dotenv != "" {
		writeFile(t, filepath.Join(dir, ".env"), dotenv, 0o600)
	}
	return dir
}

func prefixed(plugins []string) []string {
	var out []string
	for _, p := range plugins {
		out = append(out, harness.PluginPrefix+p)
	}
	return out
}

// runScript runs dir/script args with a minimal environment and returns stdout, stderr and the
// exit status.
func runScript(t *testing.T, dir, script string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, script), args...)
	cmd.Dir = t.TempDir() // not the install dir: the script finds it itself
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", script, args, err)
	}
	return out.String(), errb.String(), code
}

// unitValues returns the values of key in a unit file, in order.
func unitValues(unit, key string) []string {
	var vals []string
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

func unitValue(t *testing.T, unit, key string) string {
	t.Helper()
	vals := unitValues(unit, key)
	if len(vals) != 1 {
		t.Errorf("unit has %d %s= lines %q, want 1", len(vals), key, vals)
		return ""
	}
	return vals[0]
}

// verifyUnit checks a unit with systemd-analyze verify (which checks every setting's syntax
// and that ExecStart is executable; it reports problems as messages, not always as a failing
// status) and its sandbox with systemd-analyze security.
func verifyUnit(t *testing.T, unit, dir string) {
	t.Helper()
	analyze := requireTool(t, "systemd-analyze", "systemd")
	path := filepath.Join(dir, "chunked-uploader.service")
	writeFile(t, path, unit, 0o644)
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// Messages about other units (the system's own, loaded as dependencies) are not ours.
	var ours []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, "chunked-uploader") {
			ours = append(ours, line)
		} else if line != "" {
			t.Logf("systemd-analyze verify (other unit): %s", line)
		}
	}
	if err != nil || len(ours) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s\nunit:\n%s", err, strings.Join(ours, "\n"), unit)
	}
	// Exposure level 0.0 (best) to 10.0; the unit scores about 1.5. Fail above 2.0.
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", path).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security --offline=yes --threshold=20: %v\n%s", err, out)
	} else if i := bytes.LastIndex(out, []byte("Overall exposure level")); i >= 0 {
		t.Logf("%s", bytes.TrimSpace(out[i:]))
	}
}

// TestDeployLinuxPrint: deploy-linux.sh --print writes a valid, hardened unit built from .env.
func TestDeployLinuxPrint(t *testing.T) {
	const script = "deploy-linux.sh"
	// The data paths need not exist for --print; they must not be in /tmp (PrivateTmp would
	// hide them), so they are under a made-up /srv directory.
	srv := fmt.Sprintf("/srv/opstest-%d", time.Now().UnixNano())
	base := strings.Join([]string{
		"# a comment",
		"API_KEY=" + harness.APIKey,
		`JWT_SECRET="` + harness.JWTSecret + `"`,
		"export STORAGE_BACKEND=local",
		"LOCAL_STORAGE_PATH=" + srv + "/uploads",
		"TEMP_STORAGE_PATH='" + srv + "/staging'",
		`DATABASE_PATH="` + srv + `/db/uploads.db"`,
		"SERVER_PORT=3000   # the server ends an unquoted value at space-hash",
		"",
	}, "\n")

	t.Run("Local", func(t *testing.T) {
		dir := installDir(t, t.TempDir(), script, base, "local")
		unit, stderr, code := runScript(t, dir, script, "--print")
		if code != 0 {
			t.Fatalf("--print: exit %d\n%s", code, stderr)
		}
		want := map[string]string{
			"User":                    "chunked-uploader",
			"Group":                   "chunked-uploader",
			"WorkingDirectory":        dir,
			"ExecStart":               filepath.Join(dir, "bin", harness.HostBinary),
			"NoNewPrivileges":         "yes",
			"ProtectSystem":           "strict",
			"ReadWritePaths":          srv + "/uploads " + srv + "/staging " + srv + "/db",
			"RequiresMountsFor":       dir + " " + srv + "/uploads " + srv + "/staging " + srv + "/db",
			"ProtectHome":             "yes",
			"PrivateTmp":              "yes",
			"PrivateDevices":          "yes",
			"MemoryDenyWriteExecute":  "yes",
			"CapabilityBoundingSet":   "",
			"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
			"UMask":                   "0077",
			"KillMode":                "mixed",
			"TimeoutStopSec":          "45",
			"Restart":                 "on-failure",
			"RestartSec":              "5",
			"After":                   "network-online.target",
			"Wants":                   "network-online.target",
			"StandardOutput":          "journal",
			"StandardError":           "journal",
			"WantedBy":                "multi-user.target",
		}
		for k, v := range want {
			if got := unitValue(t, unit, k); got != v {
				t.Errorf("%s=%s, want %s=%s", k, got, k, v)
			}
		}
		for _, bad := range []string{harness.APIKey, harness.JWTSecret, "User=root", "append:", ".log"} {
			if strings.Contains(unit, bad) {
				t.Errorf("the unit contains %q", bad)
			}
		}
		if v := unitValues(unit, "EnvironmentFile"); v != nil {
			t.Errorf("EnvironmentFile=%q: the server reads .env itself", v)
		}
		verifyUnit(t, unit, t.TempDir())
	})

	t.Run("HomeAndPrivilegedPort", func(t *testing.T) {
		env := strings.Replace(base, "LOCAL_STORAGE_PATH="+srv+"/uploads", "LOCAL_STORAGE_PATH=/home/opstest/uploads", 1)
		env = strings.Replace(env, "SERVER_PORT=3000", "SERVER_PORT=443", 1)
		dir := installDir(t, t.TempDir(), script, env, "local")
		unit, stderr, code := runScript(t, dir, script, "--print")
		if code != 0 {
			t.Fatalf("--print: exit %d\n%s", code, stderr)
		}
		// ProtectHome=yes would hide /home; read-only keeps it visible, ReadWritePaths= writable.
		for k, v := range map[string]string{
			"ProtectHome":           "read-only",
			"ReadWritePaths":        "/home/opstest/uploads " + srv + "/staging " + srv + "/db",
			"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
			"AmbientCapabilities":   "CAP_NET_BIND_SERVICE",
		} {
			if got := unitValue(t, unit, k); got != v {
				t.Errorf("%s=%s, want %s=%s", k, got, k, v)
			}
		}
		verifyUnit(t, unit, t.TempDir())
	})

	t.Run("S3", func(t *testing.T) {
		env := strings.Replace(base, "STORAGE_BACKEND=local", "STORAGE_BACKEND=s3", 1)
		dir := installDir(t, t.TempDir(), script, env, "s3")
		unit, stderr, code := runScript(t, dir, script, "--print")
		if code != 0 {
			t.Fatalf("--print: exit %d\n%s", code, stderr)
		}
		// LOCAL_STORAGE_PATH is the local plugin's: not writable for another backend.
		if got, want := unitValue(t, unit, "ReadWritePaths"), srv+"/staging "+srv+"/db"; got != want {
			t.Errorf("ReadWritePaths=%s, want %s", got, want)
		}
		verifyUnit(t, unit, t.TempDir())
	})

	// Settings the script refuses, with what its message must name.
	refusals := []struct {
		name, from, to string
		plugins        []string
		want           []string
	}{
		{"DatabaseInInstallDir", `DATABASE_PATH="` + srv + `/db/uploads.db"`, "DATABASE_PATH=./uploads.db", []string{"local"},
			[]string{"DATABASE_PATH", "install directory", "./data/uploads.db"}},
		{"StagingInTmp", "TEMP_STORAGE_PATH='" + srv + "/staging'", "TEMP_STORAGE_PATH=./staging", []string{"local"},
			[]string{"TEMP_STORAGE_PATH", "/tmp", "/install/staging"}},
		{"SystemDirectory", "LOCAL_STORAGE_PATH=" + srv + "/uploads", "LOCAL_STORAGE_PATH=/var/lib", []string{"local"},
			[]string{"LOCAL_STORAGE_PATH", "system directory"}},
		{"WhiteSpace", "LOCAL_STORAGE_PATH=" + srv + "/uploads", `LOCAL_STORAGE_PATH="/srv/my uploads"`, []string{"local"},
			[]string{"LOCAL_STORAGE_PATH", "white space"}},
		{"MissingPlugin", "STORAGE_BACKEND=local", "STORAGE_BACKEND=memo", []string{"local"},
			[]string{"chunked-uploader-plugin-memo", "make build"}},
		{"BadQuote", "SERVER_PORT=3000", "SERVER_PORT='3000", []string{"local"},
			[]string{".env line 8", "unterminated quote"}},
		{"BadLine", "# a comment", "not a setting", []string{"local"},
			[]string{".env line 1", "expected KEY=VALUE"}},
	}
	for _, r := range refusals {
		t.Run("Refuse"+r.name, func(t *testing.T) {
			env := strings.Replace(base, r.from, r.to, 1)
			if env == base {
				t.Fatalf("test bug: %q not in the base .env", r.from)
			}
			dir := installDir(t, t.TempDir(), script, env, r.plugins...)
			out, stderr, code := runScript(t, dir, script, "--print")
			if code == 0 {
				t.Fatalf("--print succeeded, want a refusal; unit:\n%s", out)
			}
			for _, w := range r.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr)
				}
			}
		})
	}

	t.Run("RefuseNoEnvFile", func(t *testing.T) {
		dir := installDir(t, t.TempDir(), script, "", "local")
		_, stderr, code := runScript(t, dir, script, "--print")
		if code == 0 || !strings.Contains(stderr, "init.sh") {
			t.Errorf("--print without .env: exit %d, stderr %q; want a failure pointing to init.sh", code, stderr)
		}
	})

	t.Run("Usage", func(t *testing.T) {
		dir := installDir(t, t.TempDir(), script, base, "local")
		if out, _, code := runScript(t, dir, script, "--help"); code != 0 || !strings.Contains(out, "--print") {
			t.Errorf("--help: exit %d, %q", code, out)
		}
		if _, _, code := runScript(t, dir, script, "--bogus"); code != 2 {
			t.Errorf("--bogus: exit %d, want 2", code)
		}
	})
}

// TestDeployMacPrint: deploy-mac.sh --print writes a valid property list for launchd, with no
// secrets, also for an install directory whose name needs XML escaping.
func TestDeployMacPrint(t *testing.T) {
	const script = "deploy-mac.sh"
	python := requireTool(t, "python3", "python3")
	dotenv := "API_KEY=" + harness.APIKey + "\nJWT_SECRET=" + harness.JWTSecret + "\nSERVER_PORT=3000\n"
	dir := installDir(t, filepath.Join(t.TempDir(), "Chunked Uploader & <Co>"), script, dotenv, "local")
	plist, stderr, code := runScript(t, dir, script, "--print")
	if code != 0 {
		t.Fatalf("--print: exit %d\n%s", code, stderr)
	}
	for _, secret := range []string{harness.APIKey, harness.JWTSecret, "API_KEY", "JWT_SECRET"} {
		if strings.Contains(plist, secret) {
			t.Errorf("the plist contains %q", secret)
		}
	}

	cmd := exec.Command(python, "-c", "import json, plistlib, sys; json.dump(plistlib.loads(sys.stdin.buffer.read()), sys.stdout)")
	cmd.Stdin = strings.NewReader(plist)
	out, err := cmd.Output()
	if err != nil {
		var msg []byte
		if ee, ok := err.(*exec.ExitError); ok {
			msg = ee.Stderr
		}
		t.Fatalf("python3 plistlib.loads: %v\n%s\nplist:\n%s", err, msg, plist)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"Label":             "com.chunked-uploader.server",
		"ProgramArguments":  []any{"/bin/bash", filepath.Join(dir, script), "--run"},
		"WorkingDirectory":  dir,
		"RunAtLoad":         true,
		"KeepAlive":         map[string]any{"SuccessfulExit": false},
		"StandardOutPath":   filepath.Join(dir, "logs", "chunked-uploader.out.log"),
		"StandardErrorPath": filepath.Join(dir, "logs", "chunked-uploader.err.log"),
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if n, ok := got["ThrottleInterval"].(float64); !ok || n < 1 {
		t.Errorf("ThrottleInterval = %v, want a positive number of seconds", got["ThrottleInterval"])
	}
	if n, ok := got["ExitTimeOut"].(float64); !ok || n < 35 {
		t.Errorf("ExitTimeOut = %v, want more than the host's 30 s drain", got["ExitTimeOut"])
	}
	if _, ok := got["EnvironmentVariables"]; ok {
		t.Errorf("the plist sets EnvironmentVariables: settings belong in .env")
	}
}

// TestRunMode: deploy-linux.sh --run and deploy-mac.sh --run (on Linux there are no /Volumes to
// wait for) run the real host from the install directory with .env read by the server, with
// relative paths resolved against the install directory, and exec it, so that SIGTERM reaches
// the host directly and it shuts down cleanly.
func TestRunMode(t *testing.T) {
	bins := harness.BinDir()
	for _, script := range []string{"deploy-linux.sh", "deploy-mac.sh"} {
		t.Run(script, func(t *testing.T) {
			port := freePort(t)
			dotenv := strings.Join([]string{
				"API_KEY=" + harness.APIKey,
				"JWT_SECRET=" + harness.JWTSecret,
				"LOCAL_STORAGE_PATH=./uploads",
				"TEMP_STORAGE_PATH=./staging",
				"DATABASE_PATH=./data/uploads.db",
				"SERVER_HOST=127.0.0.1",
				fmt.Sprintf("SERVER_PORT=%d", port),
				"CHUNK_SIZE_MB=1",
				"LOG_FORMAT=json",
				"",
			}, "\n")
			dir := filepath.Join(t.TempDir(), "install")
			copyFile(t, filepath.Join(repoRoot(t), script), filepath.Join(dir, script), 0o755)
			copyFile(t, filepath.Join(repoRoot(t), "scripts", "dotenv.sh"), filepath.Join(dir, "scripts", "dotenv.sh"), 0o644)
			writeFile(t, filepath.Join(dir, ".env"), dotenv, 0o600)
			if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{harness.HostBinary, harness.PluginPrefix + "local"} {
				copyFile(t, filepath.Join(bins, name), filepath.Join(dir, "bin", name), 0o755)
			}

			p := harness.Exec(t, filepath.Join(dir, script), []string{"--run"}, t.TempDir(), t.TempDir(), nil)
			p.Base = fmt.Sprintf("http://127.0.0.1:%d", port)
			p.WaitHealthy(t)
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.PID()))
			if err != nil || exe != filepath.Join(dir, "bin", harness.HostBinary) {
				t.Errorf("the started process runs %q (%v), want the host itself (the script must exec it)", exe, err)
			}
			c := upload(t, p.Base, "run-mode.txt", []byte("run mode\n"))
			if want := filepath.Join(dir, "uploads", "files", c.FileID+"_run-mode.txt"); harness.Str(c.FinalPath) != want {
				t.Errorf("final_path = %q, want %q (LOCAL_STORAGE_PATH relative to the install directory)", harness.Str(c.FinalPath), want)
			}
			if _, err := os.Stat(filepath.Join(dir, "data", "uploads.db")); err != nil {
				t.Errorf("database not where DATABASE_PATH=./data/uploads.db says: %v", err)
			}
			if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := p.WaitExit(t, 45*time.Second); code != 0 {
				t.Errorf("exit status %d after SIGTERM, want 0\nstderr:\n%s", code, p.Stderr())
			}
		})
	}
}
