package s3store

import (
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// BenchmarkPut measures delivery throughput of a 1 GiB object with the default part size
// and concurrency. Run it with
//
//	go test -run '^$' -bench Put -benchtime 1x ./internal/s3store
func BenchmarkPut(b *testing.B) {
	const size = 1 << 30
	srv := testServer(b)
	st := openStore(b, srv.settings(srv.newBucket(b)))
	b.SetBytes(size)
	for b.Loop() {
		if _, err := st.Put(b.Context(), "bench/object.bin", plugintest.NewBlockReader(size), size); err != nil {
			b.Fatalf("Put: %v", err)
		}
	}
}
