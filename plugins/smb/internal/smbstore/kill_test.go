package smbstore

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// killServerSide kills the server process that serves conn (Samba forks one smbd per
// client connection), so the server drops the connection the way a crash or a restart
// does. It finds the process through /proc: the socket's inode in /proc/net/tcp, then the
// process holding that inode.
func killServerSide(t *testing.T, conn net.Conn) {
	t.Helper()
	local := conn.LocalAddr().(*net.TCPAddr)
	remote := conn.RemoteAddr().(*net.TCPAddr)
	// On the server side the connection's local end is our remote end and vice versa.
	inode := tcpInode(t, remote, local)
	target := fmt.Sprintf("socket:[%s]", inode)
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil && link == target {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			if pid == os.Getpid() {
				continue
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("killing smbd %d: %v", pid, err)
			}
			t.Logf("killed smbd %d serving %s", pid, local)
			return
		}
	}
	t.Fatalf("no process holds the server end of %s -> %s (socket inode %s); is the SMB server local and are we root?", local, remote, inode)
}

// tcpInode returns the inode of the IPv4 TCP socket from local to remote.
func tcpInode(t *testing.T, local, remote *net.TCPAddr) string {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatalf("reading /proc/net/tcp: %v", err)
	}
	defer f.Close()
	want := [2]string{hexAddr(local), hexAddr(remote)}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && fields[1] == want[0] && fields[2] == want[1] {
			return fields[9]
		}
	}
	t.Fatalf("socket %s -> %s not in /proc/net/tcp", local, remote)
	return ""
}

// hexAddr formats an IPv4 address as /proc/net/tcp does (little-endian address, port).
func hexAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
}
