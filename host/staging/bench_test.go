package staging

import (
	"bytes"
	"testing"
)

// BenchmarkWrite stages 50 MiB parts from memory (hash, write, fsync, rename).
func BenchmarkWrite(b *testing.B) {
	d, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	part := bytes.Repeat([]byte("0123456789abcdef"), 50<<20/16)
	b.SetBytes(int64(len(part)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := d.Write("u", i%4, bytes.NewReader(part), int64(len(part)))
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}
