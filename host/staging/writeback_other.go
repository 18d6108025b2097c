//go:build !linux

package staging

import "os"

// blockWriter writes a part file (see writeback_linux.go).
type blockWriter struct{ f *os.File }

func newBlockWriter(f *os.File) *blockWriter { return &blockWriter{f: f} }

func (w *blockWriter) write(b []byte) error {
	_, err := w.f.Write(b)
	return err
}

func syncData(f *os.File) error { return f.Sync() }
