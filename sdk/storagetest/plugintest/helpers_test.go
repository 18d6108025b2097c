package plugintest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

func TestPattern(t *testing.T) {
	a := plugintest.Pattern(100)
	if len(a) != 100 || !bytes.Equal(a, plugintest.Pattern(100)) || bytes.Equal(a[:32], a[32:64]) {
		t.Errorf("Pattern(100) = %x: want 100 bytes, the same each time, blocks differing", a)
	}
}

func TestBlockReader(t *testing.T) {
	r := plugintest.NewBlockReader(3<<20 + 5)
	b, err := io.ReadAll(r)
	if err != nil || len(b) != 3<<20+5 || !bytes.Equal(b[:1<<20], b[1<<20:2<<20]) || !bytes.Equal(b[3<<20:], r.Block[:5]) {
		t.Errorf("BlockReader yielded %d bytes, %v; want 3 MiB + 5 of its block repeated", len(b), err)
	}
}

// health fails with err, whatever its settings say.
type health struct{ err error }

func (h health) Health(context.Context) error { return h.err }

func TestRunHealthCases(t *testing.T) {
	base := sdk.Config{"X_MODE": "ok"}
	open := func(t *testing.T, c sdk.Config) sdk.HealthChecker {
		if c["X_MODE"] == "ok" {
			return health{}
		}
		return health{fmt.Errorf("%w: mode %s", sdk.ErrPermission, c["X_MODE"])}
	}
	plugintest.RunHealthCases(t, base, open, map[string]plugintest.HealthCase{
		"OK":     {Change: func(sdk.Config) {}},
		"Denied": {Change: func(c sdk.Config) { c["X_MODE"] = "denied" }, Want: sdk.ErrPermission, Text: "mode denied"},
	})
	if base["X_MODE"] != "ok" {
		t.Error("RunHealthCases changed the base settings")
	}
}
