package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
)

// congestionClient returns an HTTP client whose connections use the TCP congestion control
// algorithm cc (setsockopt TCP_CONGESTION on each socket before it connects), or an error
// saying why it cannot.
//
// Over loopback the sender's congestion control runs on the same cores as the server: with
// BBR (this project's VMs default to it), the sender paces its segments with high-resolution
// timers that fire, and transmit, on whichever core handled the ACK, often the server's, so
// part of the client's sending shows up as the server's CPU. A remote client does that work
// on its own machine; cubic (Linux's usual default) sends straight from the ACK without the
// timers.
func congestionClient(cc string) (*http.Client, error) {
	avail, err := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	if err != nil {
		return nil, fmt.Errorf("reading the available congestion controls: %w", err)
	}
	found := false
	for _, name := range strings.Fields(string(avail)) {
		found = found || name == cc
	}
	if !found {
		return nil, fmt.Errorf("congestion control %s is not available (%s)", cc, strings.TrimSpace(string(avail)))
	}
	// Available is not always allowed (net.ipv4.tcp_allowed_congestion_control binds
	// non-root users): try it on a socket of its own first.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, fmt.Errorf("a socket to try congestion control %s on: %w", cc, err)
	}
	err = syscall.SetsockoptString(fd, syscall.IPPROTO_TCP, syscall.TCP_CONGESTION, cc)
	syscall.Close(fd)
	if err != nil {
		return nil, fmt.Errorf("congestion control %s is not allowed here: %w", cc, err)
	}
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CONGESTION, cc)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("setting congestion control %s: %w", cc, serr)
		}
		return nil
	}}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = d.DialContext
	return &http.Client{Transport: t}, nil
}

// systemCongestion returns the congestion control new sockets get, or "unknown".
func systemCongestion() string {
	cc, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(cc))
}
