package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dropPages drops the file's pages from the page cache (it must be synced: dirty pages
// stay), as the host drops a part's after its fdatasync.
func dropPages(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("dropping the pages of %s: %w", path, err)
	}
	return nil
}

// residentBytes returns how many bytes of the files are in the page cache (mincore).
func residentBytes(paths []string) (int64, error) {
	page := int64(os.Getpagesize())
	var total int64
	for _, p := range paths {
		n, err := residentFile(p, page)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func residentFile(path string, page int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return 0, err
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("mmap %s: %w", path, err)
	}
	defer syscall.Munmap(data)
	vec := make([]byte, (st.Size()+page-1)/page)
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)),
		uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0, fmt.Errorf("mincore %s: %w", path, errno)
	}
	var n int64
	for _, v := range vec {
		if v&1 != 0 {
			n += page
		}
	}
	return n, nil
}
