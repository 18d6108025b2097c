//go:build !linux

package staging

import (
	"io"
	"os"
)

// fileWriter writes a part file (see writeback_linux.go for the Linux version, which uses
// direct I/O).
type fileWriter struct{ f *os.File }

func newFileWriter(f *os.File) *fileWriter { return &fileWriter{f: f} }

// write writes bufs, one after the other, at offset off.
func (w *fileWriter) write(bufs [][]byte, off int64) error {
	for _, b := range bufs {
		if _, err := w.f.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}

// finish makes the file's data durable.
func (w *fileWriter) finish(off, size int64) error { return w.f.Sync() }

// DropCache does nothing here (see writeback_linux.go).
func DropCache(f *os.File, off, size int64) {}

// SectionReader returns a reader of the size bytes of f from off (see writeback_linux.go
// for the Linux version, which uses direct I/O).
func SectionReader(f *os.File, off, size int64) io.Reader { return io.NewSectionReader(f, off, size) }
