package localstore_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/chunked-uploader/chunked-uploader/plugins/local/internal/localstore"
	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/pluginhost"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// remoteParts serves the store with sdk.Plugin over a real gRPC connection (go-plugin's
// test connection on a Unix socket) and returns the host's side of it, configured.
func remoteParts(t *testing.T, root string) sdk.PartStorage {
	t.Helper()
	factory := func(ctx context.Context, cfg sdk.Config, log sdk.Logger) (sdk.Storage, error) {
		return localstore.Open(ctx, cfg, log)
	}
	client, _ := plugin.TestPluginGRPCConn(t, false, plugin.PluginSet{sdk.PluginName: &pluginhost.Plugin{Plugin: sdk.Plugin{Name: "local", Factory: factory}}})
	t.Cleanup(func() { client.Close() })
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	remote := raw.(pluginhost.Remote)
	info, err := remote.Configure(t.Context(), sdk.Config{localstore.SettingPath: root})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if info.Parts == nil || info.Parts.MinPartSize != 0 {
		t.Fatalf("Configure reports parts %+v, want part-wise storage without a minimum", info.Parts)
	}
	return remote.(sdk.PartStorage)
}

// Through the wire: the plugin gets the sdk's verifying stream reader, which takes the
// zero-copy path into the direct-I/O writer. A part whose bytes the host finds wrong on the
// way is never finished, and the plugin leaves it absent.
func TestPartsGRPC(t *testing.T) {
	t.Parallel()
	s := newPartStore(t)
	remote := remoteParts(t, s.root)
	o := plugintest.NewObject("files/wire.bin", 5<<20+123, 1<<20)
	h, err := remote.BeginObject(t.Context(), o.Key, o.Spec)
	if err != nil {
		t.Fatal(err)
	}
	receipts := make([][]byte, o.Parts())
	var wg sync.WaitGroup
	for _, n := range rand.Perm(o.Parts()) {
		wg.Go(func() {
			r, err := remote.PutPart(t.Context(), h, o.Info(n), bytes.NewReader(o.Part(n)))
			if err != nil {
				t.Errorf("PutPart(%d): %v", n, err)
			}
			receipts[n] = r
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	wrong := bytes.Clone(o.Part(2))
	wrong[0] ^= 1
	if _, err := remote.PutPart(t.Context(), h, o.Info(2), bytes.NewReader(wrong)); !errors.Is(err, sdk.ErrDigestMismatch) {
		t.Fatalf("PutPart of wrong bytes = %v, want ErrDigestMismatch", err)
	}
	if _, err := remote.CommitObject(t.Context(), h, receipts, o.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
		t.Fatalf("CommitObject after a failed rewrite of part 2 = %v, want ErrStaleReceipt", err)
	}
	s.invisible(t, o.Key)
	if receipts[2], err = remote.PutPart(t.Context(), h, o.Info(2), bytes.NewReader(o.Part(2))); err != nil {
		t.Fatal(err)
	}
	obj, err := remote.CommitObject(t.Context(), h, receipts, o.SHA256())
	if err != nil {
		t.Fatalf("CommitObject: %v", err)
	}
	s.committed(t, obj, o)
	if got := s.files(t); !slices.Equal(got, []string{o.Key}) {
		t.Errorf("files: %v, want only %s", got, o.Key)
	}
	if _, err := remote.PutPart(t.Context(), h, o.Info(0), bytes.NewReader(o.Part(0))); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("PutPart after commit = %v, want ErrNotFound", err)
	}
}
