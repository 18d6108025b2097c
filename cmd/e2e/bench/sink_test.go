package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// TestMain makes the test binary the sink when the bench starts it as one (startSink runs
// os.Executable, which is the test binary here).
func TestMain(m *testing.M) {
	if addr := os.Getenv(sinkEnv); addr != "" {
		runSink(addr)
	}
	os.Exit(m.Run())
}

// TestHashBody checks the sink's reader and hasher against crypto/sha256 for bodies of no
// bytes, less than a block, exact blocks and a tail, read a byte at a time as well.
func TestHashBody(t *testing.T) {
	// The largest is more blocks than the reader may hold ahead of the hasher.
	data := make([]byte, (sinkDepth+3)*sinkBlock+12345)
	rand.NewChaCha8([32]byte{7}).Read(data)
	for _, n := range []int{0, 1, sinkBlock - 1, sinkBlock, 2 * sinkBlock, 3*sinkBlock + 12345, len(data)} {
		want := sha256.Sum256(data[:n])
		for _, r := range []io.Reader{bytes.NewReader(data[:n]), iotest.OneByteReader(bytes.NewReader(data[:n]))} {
			sum, size, err := hashBody(r)
			if err != nil || size != int64(n) || sum != hex.EncodeToString(want[:]) {
				t.Errorf("%d bytes: got %s, %d bytes, %v; want %x", n, sum, size, err, want)
			}
		}
	}
	boom := errors.New("connection reset")
	if _, _, err := hashBody(io.MultiReader(bytes.NewReader(data[:100]), iotest.ErrReader(boom))); !errors.Is(err, boom) {
		t.Errorf("a body that fails: got %v, want %v", err, boom)
	}
	// net/http's body of a client gone before its Content-Length.
	cut := io.MultiReader(bytes.NewReader(data[:sinkBlock+100]), iotest.ErrReader(io.ErrUnexpectedEOF))
	if _, n, err := hashBody(cut); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a body cut short: got %d bytes and %v, want io.ErrUnexpectedEOF", n, err)
	}
}

// TestSinkTrial starts the sink as a process and sends it a part once and four at a time;
// the trial checks each answer's size and SHA-256.
func TestSinkTrial(t *testing.T) {
	dir := t.TempDir()
	b := &bench{dir: dir, part: make([]byte, 5<<20+7)}
	rand.NewChaCha8([32]byte{9}).Read(b.part)
	b.partFile = filepath.Join(dir, "part.bin")
	if err := os.WriteFile(b.partFile, b.part, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.cleanup)
	s, err := b.startSink(filepath.Join(dir, "sink"))
	if err != nil {
		t.Fatal(err)
	}
	for _, width := range []int{1, 4} {
		if d, err := b.sinkTrial(s, width)(); err != nil || d <= 0 {
			t.Errorf("%d at once: %v, %v", width, d, err)
		}
	}
	// A body cut short of its Content-Length is refused, not hashed.
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /part/0 HTTP/1.1\r\nHost: sink\r\nContent-Length: 1000\r\n\r\n0123456789")
	conn.(*net.TCPConn).CloseWrite()
	answer, _ := io.ReadAll(conn)
	if !bytes.HasPrefix(answer, []byte("HTTP/1.1 400")) {
		t.Errorf("a body cut short: the sink answered %q", answer)
	}
	// A part with other bytes than the bench's is caught.
	b.part[0] ^= 1
	if _, err := b.sinkTrial(s, 1)(); err == nil {
		t.Error("the sink's SHA-256 of the file matched a different part")
	}
}
