package smbstore

import (
	"crypto/sha256"
	"io"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// BenchmarkPut measures delivery throughput of a 1 GiB object. Run it with
//
//	go test -run '^$' -bench Put -benchtime 1x ./internal/smbstore
func BenchmarkPut(b *testing.B) {
	const size = 1 << 30
	srv := testServer(b)
	st := openStore(b, srv.settings(srv.newDir(b, srv.mount(b))))
	b.SetBytes(size)
	for b.Loop() {
		if _, err := st.Put(b.Context(), "bench/object.bin", plugintest.NewBlockReader(size), size); err != nil {
			b.Fatalf("Put: %v", err)
		}
	}
}

// BenchmarkPutParts measures part-wise delivery of the same object: 50 MiB parts, 4 in
// flight (the host's defaults). Run it with BenchmarkPut for figures of one machine state:
//
//	go test -run '^$' -bench 'Put' -benchtime 1x ./internal/smbstore
func BenchmarkPutParts(b *testing.B) {
	const size, partSize, inFlight = 1 << 30, 50 << 20, 4
	srv := testServer(b)
	st := openStore(b, srv.settings(srv.newDir(b, srv.mount(b))))
	spec := sdk.ObjectSpec{Size: size, PartSize: partSize, PartCount: (size + partSize - 1) / partSize}
	// Every part starts at a multiple of the repeated block: a BlockReader of the same block
	// from 0 yields it.
	block := plugintest.NewBlockReader(0).Block
	sum := func(n int64) []byte {
		h := sha256.New()
		_, _ = io.Copy(h, &plugintest.BlockReader{Block: block, N: n})
		return h.Sum(nil)
	}
	full, last := sum(partSize), sum(spec.PartSizeOf(spec.PartCount-1))
	b.SetBytes(size)
	for b.Loop() {
		h, err := st.BeginObject(b.Context(), "bench/parts.bin", spec)
		if err != nil {
			b.Fatal(err)
		}
		receipts := plugintest.PutParts(b, st, h, spec.PartCount, inFlight, func(n int) (sdk.PartInfo, io.Reader) {
			p := sdk.PartInfo{Number: n, Size: spec.PartSizeOf(n), SHA256: full}
			if n == spec.PartCount-1 {
				p.SHA256 = last
			}
			return p, &plugintest.BlockReader{Block: block, N: p.Size}
		})
		if _, err := st.CommitObject(b.Context(), h, receipts, make([]byte, 32)); err != nil {
			b.Fatalf("CommitObject: %v", err)
		}
	}
}
