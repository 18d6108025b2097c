package staging

import (
	"bytes"
	"crypto/rand"
	"errors"
	"hash/crc32"
	"io"
	"testing"
	"testing/iotest"
)

// Write records the CRC-32C of the bytes it staged, and Checked passes them whole.
func TestWriteRecordsCRC32C(t *testing.T) {
	d := newDir(t)
	data := make([]byte, 3*blockSize+77) // several blocks and a partial page
	rand.Read(data)
	st, err := d.Write("u1", 0, iotest.HalfReader(bytes.NewReader(data)), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if want := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)); st.CRC32C != want {
		t.Fatalf("CRC32C %08x, want %08x", st.CRC32C, want)
	}
	if err := st.Commit(); err != nil {
		t.Fatal(err)
	}
	f, err := d.Open("u1", 0, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(Checked(iotest.OneByteReader(f), int64(len(data)), st.CRC32C))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Checked read %d bytes, err %v; want all %d", len(got), err, len(data))
	}
}

// A copy that differs from what was recorded fails on the read of its last byte, before
// a consumer could take it as whole; so does a copy that ends short.
func TestCheckedRefusesDamage(t *testing.T) {
	data := make([]byte, 10_000)
	rand.Read(data)
	crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	damaged := bytes.Clone(data)
	damaged[5000] ^= 1
	cases := map[string]io.Reader{
		"one bit flipped": bytes.NewReader(damaged),
		"short":           bytes.NewReader(data[:9999]),
		"longer":          bytes.NewReader(append(bytes.Clone(data), 1)),
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := io.ReadAll(Checked(r, int64(len(data)), crc))
			read := len(got)
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("after %d bytes: err %v, want ErrDamaged", read, err)
			}
		})
	}
}
