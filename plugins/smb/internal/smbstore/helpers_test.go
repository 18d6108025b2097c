package smbstore

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hirochachacha/go-smb2"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// server describes the SMB server the tests use, from the TEST_SMB_* variables that
// scripts/test-services.sh writes.
type server struct {
	addr, host, port, user, pass, share string
}

// testServer returns the test server or fails the test (plugintest.RequireEnv).
func testServer(t testing.TB) server {
	t.Helper()
	env := plugintest.RequireEnv(t, "SMB server", "TEST_SMB_ADDR", "TEST_SMB_USER", "TEST_SMB_PASS", "TEST_SMB_SHARE")
	s := server{addr: env[0], user: env[1], pass: env[2], share: env[3]}
	var err error
	if s.host, s.port, err = net.SplitHostPort(s.addr); err != nil {
		t.Fatalf("TEST_SMB_ADDR=%q: %v", s.addr, err)
	}
	return s
}

// settings returns the plugin settings for directory dir of the test share.
func (s server) settings(dir string) sdk.Config {
	return sdk.Config{
		"SMB_HOST":  s.host,
		"SMB_PORT":  s.port,
		"SMB_USER":  s.user,
		"SMB_PASS":  s.pass,
		"SMB_SHARE": s.share,
		"SMB_PATH":  dir,
	}
}

// mount opens a session of the test's own, independent of the store under test, and
// mounts the test share.
func (s server) mount(t testing.TB) *smb2.Share {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", s.addr, err)
	}
	d := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: s.user, Password: s.pass}}
	sess, err := d.Dial(conn)
	if err != nil {
		conn.Close()
		t.Fatalf("SMB login: %v", err)
	}
	fs, err := sess.Mount(s.share)
	if err != nil {
		_ = sess.Logoff()
		t.Fatalf("mount %s: %v", s.share, err)
	}
	t.Cleanup(func() {
		_ = fs.Umount()
		_ = sess.Logoff()
		conn.Close()
	})
	return fs
}

// newDir returns a unique directory name in the test share and removes that directory,
// with everything in it, when the test ends. The directory itself is not created.
func (s server) newDir(t testing.TB, fs *smb2.Share) string {
	t.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	dir := "cu-test-" + hex.EncodeToString(rnd[:])
	t.Cleanup(func() {
		if err := fs.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	return dir
}

// walk returns the slash-separated paths of every file and directory under dir, relative
// to dir. A missing dir holds nothing.
func walk(t testing.TB, fs *smb2.Share, dir string) []string {
	t.Helper()
	var names []string
	var visit func(rel string)
	visit = func(rel string) {
		infos, err := fs.ReadDir(path.Join(dir, rel))
		if os.IsNotExist(err) && rel == "" {
			return
		}
		if err != nil {
			t.Fatalf("ReadDir %s: %v", path.Join(dir, rel), err)
		}
		for _, fi := range infos {
			name := strings.TrimPrefix(path.Join(rel, fi.Name()), "/")
			names = append(names, name)
			if fi.IsDir() {
				visit(name)
			}
		}
	}
	visit("")
	return names
}

// openStore builds a Store through Open, as the plugin does on Configure, and closes it
// when the test ends.
func openStore(t testing.TB, cfg sdk.Config) *Store {
	t.Helper()
	st, err := Open(t.Context(), cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = st.(*Store).Close() })
	return st.(*Store)
}
