package s3store

import (
	"crypto/rand"
	"io"
	"testing"
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
		if _, err := st.Put(b.Context(), "bench/object.bin", newBlockReader(size), size); err != nil {
			b.Fatalf("Put: %v", err)
		}
	}
}

// blockReader yields n bytes by repeating a random 1 MiB block, cheaply.
type blockReader struct {
	block []byte
	off   int64
	n     int64
}

func newBlockReader(n int64) *blockReader {
	b := make([]byte, 1<<20)
	_, _ = rand.Read(b)
	return &blockReader{block: b, n: n}
}

func (r *blockReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	m := copy(p, r.block[r.off%int64(len(r.block)):])
	r.off += int64(m)
	return m, nil
}
