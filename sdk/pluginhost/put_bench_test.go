package pluginhost_test

import (
	"context"
	"io"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/pluginhost"
)

type discardStorage struct{}

func (discardStorage) Put(_ context.Context, key string, r io.Reader, size int64) (sdk.Object, error) {
	sum, err := sdk.CopyExact(io.Discard, r, size)
	return sdk.Object{Key: key, Size: size, SHA256: sum}, err
}
func (discardStorage) Stat(context.Context, string) (sdk.Object, error) {
	return sdk.Object{}, sdk.ErrNotFound
}
func (discardStorage) Delete(context.Context, string) error { return nil }

// zeros yields n zero bytes without allocating them.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), z.n)]
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// BenchmarkGRPCPut measures a Put through a real gRPC connection (in process, no TLS).
func BenchmarkGRPCPut(b *testing.B) {
	factory := func(context.Context, sdk.Config, sdk.Logger) (sdk.Storage, error) { return discardStorage{}, nil }
	client, _ := plugin.TestPluginGRPCConn(b, false, map[string]plugin.Plugin{sdk.PluginName: &pluginhost.Plugin{Plugin: sdk.Plugin{Name: "d", Factory: factory}}})
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		b.Fatal(err)
	}
	remote := raw.(pluginhost.Remote)
	if _, err := remote.Configure(context.Background(), sdk.Config{}); err != nil {
		b.Fatal(err)
	}
	const size = 256 << 20
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := remote.Put(context.Background(), "k", &zeros{size}, size); err != nil {
			b.Fatal(err)
		}
	}
}
