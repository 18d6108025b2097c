//go:build !linux

package localstore

import "os"

// fileWriter writes the content of a Put to f (see direct_linux.go).
type fileWriter interface {
	Write(p []byte) (int, error)
	Close() error
	Abort()
}

type bufferedWriter struct{ f *os.File }

func (b bufferedWriter) Write(p []byte) (int, error) { return b.f.Write(p) }
func (b bufferedWriter) Close() error                { return nil }
func (b bufferedWriter) Abort()                      {}

func newFileWriter(f *os.File) fileWriter { return bufferedWriter{f} }

const directReserve = 0

// directBlock is the alignment direct I/O would need; without it, any offset will do.
const directBlock = 1

// datasync flushes f's data to disk.
func datasync(f *os.File) error { return f.Sync() }
