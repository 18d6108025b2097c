//go:build !linux

package staging

import "os"

// fileWriter writes a part file (see writeback_linux.go for the Linux version, which keeps
// the disk busy while the body arrives).
type fileWriter struct{ f *os.File }

func newFileWriter(f *os.File) *fileWriter { return &fileWriter{f: f} }

// write writes b at offset off.
func (w *fileWriter) write(b []byte, off int64) error {
	_, err := w.f.WriteAt(b, off)
	return err
}

// finish makes the file's data durable.
func (w *fileWriter) finish() error { return w.f.Sync() }
