package pluginhost_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/pluginhost"
)

// kinds is every sentinel a plugin can send, by name.
var kinds = map[string]error{
	"NotFound":            sdk.ErrNotFound,
	"InvalidKey":          sdk.ErrInvalidKey,
	"InvalidConfig":       sdk.ErrInvalidConfig,
	"SizeMismatch":        sdk.ErrSizeMismatch,
	"DigestMismatch":      sdk.ErrDigestMismatch,
	"Unavailable":         sdk.ErrUnavailable,
	"InsufficientStorage": sdk.ErrInsufficientStorage,
	"Permission":          sdk.ErrPermission,
	"NotSupported":        sdk.ErrNotSupported,
	"NotConfigured":       sdk.ErrNotConfigured,
	"StaleReceipt":        sdk.ErrStaleReceipt,
}

// faulty fails every call with an error wrapping kind.
type faulty struct{ kind error }

func (f *faulty) fail(op string) error { return fmt.Errorf("faulty: %s: %w", op, f.kind) }

func (f *faulty) Put(context.Context, string, io.Reader, int64) (sdk.Object, error) {
	return sdk.Object{}, f.fail("put")
}
func (f *faulty) Stat(context.Context, string) (sdk.Object, error) {
	return sdk.Object{}, f.fail("stat")
}
func (f *faulty) Delete(context.Context, string) error { return f.fail("delete") }
func (f *faulty) Health(context.Context) error         { return f.fail("health") }
func (f *faulty) PartLimits() sdk.PartLimits           { return sdk.PartLimits{} }
func (f *faulty) BeginObject(context.Context, string, sdk.ObjectSpec) ([]byte, error) {
	return nil, f.fail("begin")
}
func (f *faulty) PutPart(context.Context, []byte, sdk.PartInfo, io.Reader) ([]byte, error) {
	return nil, f.fail("put part")
}
func (f *faulty) CommitObject(context.Context, []byte, [][]byte, []byte) (sdk.Object, error) {
	return sdk.Object{}, f.fail("commit")
}
func (f *faulty) AbortObject(context.Context, string, []byte) error { return f.fail("abort") }

// TestErrorKindsOverGRPC: an error of each kind that a plugin returns from each call
// arrives at the host, over go-plugin's real gRPC connection, as an error wrapping that
// sentinel and no other, also after the host wraps it further.
func TestErrorKindsOverGRPC(t *testing.T) {
	var current error // the kind the next Configure sets up
	factory := func(_ context.Context, cfg sdk.Config, _ sdk.Logger) (sdk.Storage, error) {
		if cfg.Get("FAIL") != "" {
			return nil, fmt.Errorf("faulty: configure: %w", current)
		}
		return &faulty{kind: current}, nil
	}
	client, server := plugin.TestPluginGRPCConn(t, false, plugin.PluginSet{
		sdk.PluginName: &pluginhost.Plugin{Plugin: sdk.Plugin{Name: "faulty", Factory: factory}},
	})
	t.Cleanup(func() { server.Stop(); client.Close() })
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	r := raw.(pluginhost.Remote)

	part := []byte("part")
	sum := sha256.Sum256(part)
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Configure", func(ctx context.Context) error {
			_, err := r.Configure(ctx, sdk.Config{"FAIL": "1"})
			return err
		}},
		{"Stat", func(ctx context.Context) error { _, err := r.Stat(ctx, "a/b"); return err }},
		{"Delete", func(ctx context.Context) error { return r.Delete(ctx, "a/b") }},
		{"Put", func(ctx context.Context) error {
			_, err := r.Put(ctx, "a/b", bytes.NewReader(part), int64(len(part)))
			return err
		}},
		{"Health", func(ctx context.Context) error { return r.Health(ctx) }},
		{"BeginObject", func(ctx context.Context) error {
			_, err := r.BeginObject(ctx, "a/b", sdk.ObjectSpec{Size: 4, PartSize: 4, PartCount: 1})
			return err
		}},
		{"PutPart", func(ctx context.Context) error {
			_, err := r.PutPart(ctx, []byte("h"), sdk.PartInfo{Size: 4, SHA256: sum[:]}, bytes.NewReader(part))
			return err
		}},
		{"CommitObject", func(ctx context.Context) error {
			_, err := r.CommitObject(ctx, []byte("h"), [][]byte{[]byte("r")}, sum[:])
			return err
		}},
		{"AbortObject", func(ctx context.Context) error { return r.AbortObject(ctx, "a/b", nil) }},
	}
	for name, kind := range kinds {
		t.Run(name, func(t *testing.T) {
			current = kind
			if _, err := r.Configure(t.Context(), sdk.Config{}); err != nil {
				t.Fatalf("Configure: %v", err)
			}
			for _, c := range calls {
				err := c.call(t.Context())
				if err == nil {
					t.Errorf("%s: no error", c.name)
					continue
				}
				wrapped := fmt.Errorf("deliver: %w", err)
				if !errors.Is(wrapped, kind) {
					t.Errorf("%s: %q does not wrap %v", c.name, err, kind)
				}
				for other, o := range kinds {
					// Health reports every failure as ErrUnavailable too.
					if o != kind && errors.Is(err, o) && !(c.name == "Health" && o == sdk.ErrUnavailable) {
						t.Errorf("%s: %q also wraps %s", c.name, err, other)
					}
				}
				if c.name == "Health" && !errors.Is(err, sdk.ErrUnavailable) {
					t.Errorf("Health: %q does not wrap ErrUnavailable", err)
				}
			}
		})
	}
}
