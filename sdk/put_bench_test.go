package sdk

import (
	"context"
	"io"
	"testing"

	"github.com/hashicorp/go-plugin"
)

type discardStorage struct{}

func (discardStorage) Put(_ context.Context, key string, r io.Reader, size int64) (Object, error) {
	sum, err := CopyExact(io.Discard, r, size)
	return Object{Key: key, Size: size, SHA256: sum}, err
}
func (discardStorage) Stat(context.Context, string) (Object, error) { return Object{}, ErrNotFound }
func (discardStorage) Delete(context.Context, string) error         { return nil }

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
	factory := func(context.Context, Config, Logger) (Storage, error) { return discardStorage{}, nil }
	client, _ := plugin.TestPluginGRPCConn(b, false, map[string]plugin.Plugin{PluginName: &Plugin{Name: "d", Factory: factory}})
	raw, err := client.Dispense(PluginName)
	if err != nil {
		b.Fatal(err)
	}
	remote := raw.(Remote)
	if _, err := remote.Configure(context.Background(), Config{}); err != nil {
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
