package opstest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

var (
	allPluginsOnce sync.Once
	allPluginsDir  string
	allPluginsErr  error
)

// allPlugins returns a directory holding the host and the local, s3 and smb plugins, mode
// 0755 in a directory only the owner may write (what PLUGIN_DIR must be): copied from
// CHUNKED_UPLOADER_BIN_DIR when it has them, else built.
func allPlugins(tb testing.TB) string {
	tb.Helper()
	bins := harness.BinDir()
	allPluginsOnce.Do(func() {
		allPluginsDir, allPluginsErr = os.MkdirTemp("", "opstest-plugins-")
		if allPluginsErr != nil {
			return
		}
		root := repoRoot(tb)
		for _, name := range []string{"s3", "smb"} {
			dst := filepath.Join(allPluginsDir, harness.PluginPrefix+name)
			if src := filepath.Join(bins, harness.PluginPrefix+name); fileExists(src) {
				allPluginsErr = harness.CopyExecutable(src, dst)
			} else {
				allPluginsErr = harness.GoBuild(filepath.Join(root, "plugins", name), dst, ".", nil)
			}
			if allPluginsErr != nil {
				return
			}
		}
		for _, name := range []string{harness.HostBinary, harness.PluginPrefix + "local"} {
			if allPluginsErr = harness.CopyExecutable(filepath.Join(bins, name), filepath.Join(allPluginsDir, name)); allPluginsErr != nil {
				return
			}
		}
	})
	if allPluginsErr != nil {
		tb.Fatalf("plugins under test: %v", allPluginsErr)
	}
	return allPluginsDir
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// runHost runs the host from dir with env (and args) until it exits, at most a minute, and
// returns its exit status and stdout and stderr.
func runHost(t *testing.T, pluginDir string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	work := t.TempDir()
	env["PLUGIN_DIR"] = pluginDir
	p := harness.Exec(t, filepath.Join(pluginDir, harness.HostBinary), args, work, t.TempDir(), env)
	code := p.WaitExit(t, time.Minute)
	return code, p.Stdout(), p.Stderr()
}

// namingLine returns the first line of out that names setting, or "".
func namingLine(out, setting string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, setting) {
			return line
		}
	}
	return ""
}

// TestCheckConfig: --check-config refuses, with exit status 2 and a line naming the setting,
// every setting that can be known to be wrong before a start: the plugin's own settings
// (which the plugin checks without connecting anywhere), unusable directories, a host name
// that does not resolve, durations out of bounds, a blank webhook secret. It changes
// nothing, and accepts a valid configuration whose backend cannot be reached.
func TestCheckConfig(t *testing.T) {
	plugins := allPlugins(t)
	file := filepath.Join(t.TempDir(), "a-file")
	writeFile(t, file, "not a directory\n", 0o600)

	s3 := map[string]string{"STORAGE_BACKEND": "s3", "S3_ENDPOINT": "http://127.0.0.1:1", "S3_BUCKET": "checkconfig",
		"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"}
	smb := map[string]string{"STORAGE_BACKEND": "smb", "SMB_HOST": "127.0.0.1", "SMB_PORT": "1", "SMB_USER": "nobody",
		"SMB_PASS": "x", "SMB_SHARE": "share"}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "<unset>" {
				delete(out, kv[i])
			} else {
				out[kv[i]] = kv[i+1]
			}
		}
		return out
	}
	refusals := []struct {
		name    string
		env     map[string]string
		setting string
	}{
		{"S3Typo", with(s3, "S3_BUKET", "checkconfig"), "S3_BUKET"},
		{"S3PartSize", with(s3, "S3_PART_SIZE_MB", "1"), "S3_PART_SIZE_MB"},
		{"SMBNoUser", with(smb, "SMB_USER", "<unset>"), "SMB_USER"},
		{"SMBPortZero", with(smb, "SMB_PORT", "0"), "SMB_PORT"},
		{"LocalPathBelowFile", map[string]string{"LOCAL_STORAGE_PATH": filepath.Join(file, "uploads")}, "LOCAL_STORAGE_PATH"},
		{"StagingBelowFile", map[string]string{"TEMP_STORAGE_PATH": filepath.Join(file, "staging")}, "TEMP_STORAGE_PATH"},
		{"DatabaseBelowFile", map[string]string{"DATABASE_PATH": filepath.Join(file, "db", "uploads.db")}, "DATABASE_PATH"},
		{"UnresolvableHost", map[string]string{"SERVER_HOST": "no-such-host.invalid"}, "SERVER_HOST"},
		{"HealthTimeout1ns", map[string]string{"PLUGIN_HEALTH_TIMEOUT": "1ns"}, "PLUGIN_HEALTH_TIMEOUT"},
		{"BlankWebhookSecret", map[string]string{"WEBHOOK_SECRET": strings.Repeat(" ", 16)}, "WEBHOOK_SECRET"},
	}
	for _, r := range refusals {
		t.Run("Refuse"+r.name, func(t *testing.T) {
			t.Parallel()
			env := hostEnv(t, t.TempDir())
			for k, v := range r.env {
				env[k] = v
			}
			code, stdout, stderr := runHost(t, plugins, env, "-check-config")
			line := namingLine(stderr, r.setting)
			t.Logf("exit %d; %s", code, strings.TrimSpace(line))
			if code != 2 || line == "" {
				t.Errorf("--check-config: exit %d, stdout %q, stderr:\n%s\nwant exit 2 and a line naming %s", code, stdout, stderr, r.setting)
			}
		})
	}
	for name, backend := range map[string]map[string]string{"S3": s3, "SMB": smb, "Local": nil} {
		t.Run("Accept"+name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			env := hostEnv(t, dir)
			env["TEMP_STORAGE_PATH"] = filepath.Join(dir, "new", "staging")
			env["DATABASE_PATH"] = filepath.Join(dir, "new", "db", "uploads.db")
			env["LOCAL_STORAGE_PATH"] = filepath.Join(dir, "new", "uploads")
			for k, v := range backend {
				env[k] = v
			}
			code, stdout, stderr := runHost(t, plugins, env, "-check-config")
			if code != 0 || !strings.Contains(stdout, "configuration ok") {
				t.Errorf("--check-config of a valid configuration (backend unreachable): exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "new")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("--check-config created %s (%v)", filepath.Join(dir, "new"), err)
			}
		})
	}
}

// TestInvalidAtStartExits2: what --check-config refuses, a start refuses too, with exit
// status 2 (so that systemd's RestartPreventExitStatus=2 stops restarting it) and a line
// naming the setting, before it listens.
func TestInvalidAtStartExits2(t *testing.T) {
	plugins := allPlugins(t)
	file := filepath.Join(t.TempDir(), "a-file")
	writeFile(t, file, "not a directory\n", 0o600)
	cases := []struct {
		name    string
		env     map[string]string
		setting string
	}{
		{"StagingBelowFile", map[string]string{"TEMP_STORAGE_PATH": filepath.Join(file, "staging")}, "TEMP_STORAGE_PATH"},
		{"DatabaseBelowFile", map[string]string{"DATABASE_PATH": filepath.Join(file, "db", "uploads.db")}, "DATABASE_PATH"},
		{"UnresolvableHost", map[string]string{"SERVER_HOST": "no-such-host.invalid"}, "SERVER_HOST"},
		{"S3Typo", map[string]string{"STORAGE_BACKEND": "s3", "S3_BUKET": "x", "S3_ENDPOINT": "http://127.0.0.1:1"}, "S3_BUKET"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := hostEnv(t, t.TempDir())
			for k, v := range c.env {
				env[k] = v
			}
			code, _, stderr := runHost(t, plugins, env)
			line := namingLine(stderr, c.setting)
			t.Logf("exit %d; %s", code, strings.TrimSpace(line))
			if code != 2 || line == "" {
				t.Errorf("start: exit %d, stderr:\n%s\nwant exit 2 and a line naming %s", code, stderr, c.setting)
			}
		})
	}
}
