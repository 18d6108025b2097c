package localstore

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// writeAll writes data through newFileWriter in uneven pieces and reads the file back.
func writeAll(t *testing.T, dir string, data []byte) (fileWriter, []byte) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := newFileWriter(f)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1<<20+7)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return w, got
}

func TestDirectWriterSizes(t *testing.T) {
	for _, size := range []int{0, 1, directBlock - 1, directBlock, directBlock + 1, directBufSize - 1, directBufSize,
		directBufSize + 1, 3*directBufSize + directBlock + 5} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i*31 + i>>13)
		}
		w, got := writeAll(t, t.TempDir(), data)
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: file differs (%d bytes)", size, len(got))
		}
		if size == 0 {
			if _, ok := w.(*directWriter); !ok {
				t.Log("this file system does not take O_DIRECT: the buffered path was tested")
			}
		}
	}
}

// On a file system without O_DIRECT (tmpfs) the writer falls back to buffered writes.
func TestDirectWriterFallback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	data := bytes.Repeat([]byte("tmpfs!"), 2<<20)
	w, got := writeAll(t, dir, data)
	if _, direct := w.(*directWriter); direct {
		t.Log("tmpfs accepted O_DIRECT here")
	}
	if !bytes.Equal(got, data) {
		t.Fatal("file differs")
	}
}
