package main

import (
	"net"
	"net/http"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCongestionClient checks that the client's connections use the congestion control
// asked for (read back from the socket), and that an unknown one is refused up front.
func TestCongestionClient(t *testing.T) {
	if _, err := congestionClient("no-such-congestion-control"); err == nil {
		t.Error("an unknown congestion control was accepted")
	}
	c, err := congestionClient("reno") // built into every Linux kernel, and allowed to all by default
	if err != nil {
		t.Skipf("reno cannot be chosen here: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := c.Transport.(*http.Transport).DialContext(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got string
	var gerr error
	if err := raw.Control(func(fd uintptr) { got, gerr = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION) }); err != nil || gerr != nil {
		t.Fatalf("reading TCP_CONGESTION back: %v %v", err, gerr)
	}
	if got != "reno" {
		t.Errorf("the connection uses %q, want reno", got)
	}
}
