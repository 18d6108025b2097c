package smbstore

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"path"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

func TestConformance(t *testing.T) {
	srv := testServer(t)
	fs := srv.mount(t)
	var dir string // the directory of the store New returned last
	o := storagetest.Options{
		New: func(t *testing.T) sdk.Storage {
			dir = srv.newDir(t, fs)
			return openStore(t, srv.settings(dir))
		},
		// A new session over the same directory: a plugin restart.
		Reopen:      func(t *testing.T) sdk.Storage { return openStore(t, srv.settings(dir)) },
		PartBuffers: 8 << 20, // 4 x 1 MiB pipelined writes and go-smb2's copies

		ReadBack: func(t *testing.T, key string) (io.ReadCloser, error) {
			return fs.WithContext(t.Context()).Open(path.Join(dir, key))
		},
		List: func(t *testing.T) []string { return walk(t, fs, dir) },
	}
	t.Run("Direct", func(t *testing.T) { storagetest.Run(t, o) })
	t.Run("GRPC", func(t *testing.T) { storagetest.RunGRPC(t, o) })
}

// TestReconnect breaks the store's session underneath it; the next operations must
// reconnect by themselves.
func TestReconnect(t *testing.T) {
	srv := testServer(t)
	fs := srv.mount(t)
	// Not tested: a Logoff underneath the store. go-smb2 then blocks every later request
	// until its context ends (the store never logs off a session in use; its watchdog would
	// drop such a session after opTimeout).
	tests := map[string]func(t *testing.T, s *session){
		"ConnectionClosed": func(_ *testing.T, s *session) { _ = s.conn.Close() },
		"ServerKilled":     func(t *testing.T, s *session) { killServerSide(t, s.conn) },
		"Unmounted":        func(_ *testing.T, s *session) { _ = s.share.Umount() },
	}
	for name, breakIt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := srv.newDir(t, fs)
			st := openStore(t, srv.settings(dir))
			b := plugintest.Pattern(3<<20 + 5)
			if _, err := st.Put(t.Context(), "first.bin", bytes.NewReader(b), int64(len(b))); err != nil {
				t.Fatalf("first Put: %v", err)
			}
			st.mu.Lock()
			old := st.cur
			st.mu.Unlock()
			breakIt(t, old)

			obj, err := st.Put(t.Context(), "second.bin", bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatalf("Put after the session broke: %v", err)
			}
			if sum := sha256.Sum256(b); !bytes.Equal(obj.SHA256, sum[:]) {
				t.Errorf("SHA256 = %x, want %x", obj.SHA256, sum)
			}
			st.mu.Lock()
			cur := st.cur
			st.mu.Unlock()
			if cur == old || cur == nil {
				t.Errorf("the store did not replace its session")
			}
			for _, k := range []string{"first.bin", "second.bin"} {
				if got, err := fs.ReadFile(path.Join(dir, k)); err != nil || !bytes.Equal(got, b) {
					t.Errorf("%s: read %d bytes, err %v; want the %d bytes written", k, len(got), err, len(b))
				}
			}
			// Stat, Delete and Health recover the same way.
			breakIt(t, cur)
			if _, err := st.Stat(t.Context(), "first.bin"); err != nil {
				t.Errorf("Stat after the session broke: %v", err)
			}
			st.mu.Lock()
			breakIt(t, st.cur)
			st.mu.Unlock()
			if err := st.Delete(t.Context(), "first.bin"); err != nil {
				t.Errorf("Delete after the session broke: %v", err)
			}
			st.mu.Lock()
			breakIt(t, st.cur)
			st.mu.Unlock()
			if err := st.Health(t.Context()); err != nil {
				t.Errorf("Health after the session broke: %v", err)
			}
			if names := walk(t, fs, dir); len(names) != 1 || names[0] != "second.bin" {
				t.Errorf("directory holds %q, want only second.bin", names)
			}
		})
	}
}

// TestClose closes the store while a Put is in progress: the Put completes, later
// operations fail, and the session is gone once the Put has ended.
func TestClose(t *testing.T) {
	srv := testServer(t)
	fs := srv.mount(t)
	dir := srv.newDir(t, fs)
	st := openStore(t, srv.settings(dir))
	b := plugintest.Pattern(4 << 20)
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		_, err := st.Put(t.Context(), "during-close.bin", pr, int64(len(b)))
		errc <- err
	}()
	if _, err := pw.Write(b[:len(b)/2]); err != nil {
		t.Fatalf("writing the first half: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := st.Stat(t.Context(), "during-close.bin"); !errors.Is(err, sdk.ErrUnavailable) {
		t.Errorf("Stat after Close: got %v, want an error wrapping ErrUnavailable", err)
	}
	if _, err := pw.Write(b[len(b)/2:]); err != nil {
		t.Fatalf("writing the second half: %v", err)
	}
	pw.Close()
	if err := <-errc; err != nil {
		t.Fatalf("Put in progress during Close: %v", err)
	}
	if got, err := fs.ReadFile(path.Join(dir, "during-close.bin")); err != nil || !bytes.Equal(got, b) {
		t.Errorf("read back %d bytes, err %v; want the %d bytes written", len(got), err, len(b))
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.cur != nil || st.active != 0 {
		t.Errorf("after the last operation ended: session %v, %d operations active; want none", st.cur, st.active)
	}
}

func TestHealth(t *testing.T) {
	srv := testServer(t)
	fs := srv.mount(t)
	dir := srv.newDir(t, fs)
	tests := map[string]plugintest.HealthCase{
		"OK": {Change: func(sdk.Config) {}},
		"NestedPath": {Change: func(c sdk.Config) {
			c["SMB_PATH"] = "/" + dir + "/deeper/still/"
		}},
		"WrongPassword": {
			Change: func(c sdk.Config) { c["SMB_PASS"] = "wrong-" + srv.pass },
			Want:   sdk.ErrPermission,
			Text:   "wrong user name or password",
		},
		"UnknownUser": {
			Change: func(c sdk.Config) { c["SMB_USER"] = "nosuchuser" },
			Want:   sdk.ErrPermission,
			Text:   "wrong user name or password",
		},
		"UnknownShare": {
			Change: func(c sdk.Config) { c["SMB_SHARE"] = "nosuchshare" },
			Want:   sdk.ErrInvalidConfig,
			Text:   `share "nosuchshare" not found`,
		},
		"Unreachable": {
			Change: func(c sdk.Config) { c["SMB_HOST"], c["SMB_PORT"] = "127.0.0.1", "1" },
			Want:   sdk.ErrUnavailable,
			Text:   "cannot reach SMB server 127.0.0.1:1",
		},
	}
	plugintest.RunHealthCases(t, srv.settings(dir), func(t *testing.T, c sdk.Config) sdk.HealthChecker { return openStore(t, c) }, tests)
	if names := walk(t, fs, dir); strings.Join(names, ",") != "deeper,deeper/still" {
		t.Errorf("directory holds %q after health checks, want only the created directories", names)
	}
}

// TestLongName stores a key whose file name has the longest allowed length: the temporary
// and aside names must be shortened to fit.
func TestLongName(t *testing.T) {
	srv := testServer(t)
	fs := srv.mount(t)
	dir := srv.newDir(t, fs)
	st := openStore(t, srv.settings(dir))
	key := "long/" + strings.Repeat("é", 100) + strings.Repeat("x", sdk.MaxSegmentLength-200)
	for _, b := range [][]byte{plugintest.Pattern(1000), plugintest.Pattern(2000)} { // the second replaces the first
		if _, err := st.Put(t.Context(), key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if got, err := fs.ReadFile(path.Join(dir, key)); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("read back %d bytes, err %v; want the %d bytes written", len(got), err, len(b))
		}
	}
	if names := walk(t, fs, dir); len(names) != 2 {
		t.Errorf("directory holds %q, want the key and its directory", names)
	}
}

// TestLocation checks the smb:// URL Put returns.
func TestLocation(t *testing.T) {
	tests := map[string]struct {
		cfg  Config
		want string
	}{
		"DefaultPort": {Config{Host: "nas", Port: 445, Share: "media", Path: "up/loads"}, "smb://nas/media/up/loads/a/b.bin"},
		"OtherPort":   {Config{Host: "10.0.0.5", Port: 4445, Share: "share"}, "smb://10.0.0.5:4445/share/a/b.bin"},
		"IPv6":        {Config{Host: "::1", Port: 4445, Share: "s", Path: "p"}, "smb://[::1]:4445/s/p/a/b.bin"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.cfg.location("a/b.bin"); got != tc.want {
				t.Errorf("location = %q, want %q", got, tc.want)
			}
		})
	}
}
