// Command faultplugin is a storage plugin for fault-injection tests: it stores objects as
// files like the local plugin, and misbehaves as FAULT_MODE says:
//
//	hang-put        a Put reads 1 MiB, then blocks forever (ignoring cancellation)
//	crash-put       a Put reads 1 MiB, then the process exits
//	slow-put        a Put reads 32 KiB every 10 ms (about 3 MiB/s): a slow but live backend
//	fail-put        a Put fails at once with sdk.ErrUnavailable (a backend that went away)
//	hang-health     Health blocks forever
//	crash-configure the process exits on Configure
//
// Whatever the mode, Stat of "kind/<REASON>" fails with an error wrapping the sentinel of
// that reason on the wire (kind/NOT_FOUND: sdk.ErrNotFound; see sdk.WireErrors), for tests
// of the error kinds on the wire.
//
// A mode is also on while a file of its name exists in the directory FAULT_CONTROL, so a
// test can make a running system misbehave and recover. Every Put appends a line to
// FAULT_ROOT/.puts (for counting deliveries), and every Health one to the file
// FAULT_HEALTH_LOG when that is set (for counting probes). FAULT_ROOT is the directory
// objects go to. It lives in testdata so it never ships.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

type store struct {
	mode, control, root, healthLog string
}

// on reports whether mode is on: set by FAULT_MODE or by a control file.
func on(mode, static, control string) bool {
	if static == mode {
		return true
	}
	if control == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(control, mode))
	return err == nil
}

// count appends line to the file path.
func count(path, line string) {
	if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintln(f, line)
		f.Close()
	}
}

// slowReader reads 32 KiB at most every 10 ms.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	time.Sleep(10 * time.Millisecond)
	return s.r.Read(p[:min(len(p), 32<<10)])
}

func (s *store) Put(ctx context.Context, key string, r io.Reader, size int64) (sdk.Object, error) {
	count(filepath.Join(s.root, ".puts"), key)
	if on("fail-put", s.mode, s.control) {
		return sdk.Object{}, fmt.Errorf("%w: fault plugin: fail-put", sdk.ErrUnavailable)
	}
	if on("slow-put", s.mode, s.control) {
		r = slowReader{r}
	}
	hang, crash := on("hang-put", s.mode, s.control), on("crash-put", s.mode, s.control)
	if hang || crash {
		if _, err := io.CopyN(io.Discard, r, min(size, 1<<20)); err != nil {
			return sdk.Object{}, err
		}
		if crash {
			os.Exit(3)
		}
		select {} // hang
	}
	path := filepath.Join(s.root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return sdk.Object{}, err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return sdk.Object{}, err
	}
	sum, err := sdk.CopyExact(f, r, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return sdk.Object{}, err
	}
	return sdk.Object{Key: key, Size: size, SHA256: sum, Location: path}, nil
}

// kinds are the sentinels Stat of "kind/<REASON>" fails with, by their reason on the wire.
var kinds = sdk.WireErrors()

func (s *store) Stat(ctx context.Context, key string) (sdk.Object, error) {
	if name, ok := strings.CutPrefix(key, "kind/"); ok && kinds[name] != nil {
		return sdk.Object{}, fmt.Errorf("fault plugin: stat %s: %w", key, kinds[name])
	}
	st, err := os.Stat(filepath.Join(s.root, filepath.FromSlash(key)))
	if err != nil {
		return sdk.Object{}, fmt.Errorf("%w: %s", sdk.ErrNotFound, key)
	}
	return sdk.Object{Key: key, Size: st.Size()}, nil
}

func (s *store) Delete(ctx context.Context, key string) error {
	err := os.Remove(filepath.Join(s.root, filepath.FromSlash(key)))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

func (s *store) Health(ctx context.Context) error {
	if s.healthLog != "" {
		count(s.healthLog, "probe")
	}
	if on("hang-health", s.mode, s.control) {
		select {}
	}
	return nil
}

func main() {
	sdk.Serve("fault", func(ctx context.Context, cfg sdk.Config, log sdk.Logger) (sdk.Storage, error) {
		if on("crash-configure", cfg.Get("FAULT_MODE"), cfg.Get("FAULT_CONTROL")) {
			os.Exit(4)
		}
		root, err := cfg.Required("FAULT_ROOT")
		if err != nil {
			return nil, err
		}
		return &store{mode: cfg.Get("FAULT_MODE"), control: cfg.Get("FAULT_CONTROL"), root: root, healthLog: cfg.Get("FAULT_HEALTH_LOG")}, nil
	})
}
