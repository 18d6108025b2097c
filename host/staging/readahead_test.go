package staging

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

// ReadAhead gives r's bytes, whole and in order, to WriteTo and to Read of any size, and
// r's error after the bytes before it.
func TestReadAhead(t *testing.T) {
	data := randomBytes(3*readAheadBlock + 777)
	var got bytes.Buffer
	a := ReadAhead(iotest.HalfReader(bytes.NewReader(data)))
	if _, err := a.(io.WriterTo).WriteTo(&got); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("WriteTo gave %d bytes, want the %d of the source", got.Len(), len(data))
	}

	a = ReadAhead(bytes.NewReader(data))
	all, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(a, 1000)))
	if err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(a) // Read, then what is left
	a.Close()
	if err != nil || !bytes.Equal(append(all, rest...), data) {
		t.Fatalf("Read gave %d bytes (%v), want the %d of the source", len(all)+len(rest), err, len(data))
	}

	boom := errors.New("disk on fire")
	a = ReadAhead(io.MultiReader(bytes.NewReader(data[:readAheadBlock+5]), iotest.ErrReader(boom)))
	got.Reset()
	if _, err := a.(io.WriterTo).WriteTo(&got); !errors.Is(err, boom) || got.Len() != readAheadBlock+5 {
		t.Fatalf("WriteTo of a failing source: %d bytes, %v; want %d bytes, then its error", got.Len(), err, readAheadBlock+5)
	}
	a.Close()
}

// Close stops a read-ahead whose consumer went away, and its goroutine ends, however much
// is left to read.
func TestReadAheadClose(t *testing.T) {
	a := ReadAhead(iotest.TimeoutReader(bytes.NewReader(make([]byte, 64<<20)))) // never ends by itself
	buf := make([]byte, 10)
	if _, err := a.Read(buf); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { a.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := a.Read(buf); err == nil {
		t.Fatal("Read after Close succeeded")
	}
}
