package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// congestionClient returns an HTTP client, otherwise like benchClient, whose connections
// use the TCP congestion control algorithm cc (TCP_CONGESTION, set on each socket before
// it connects), or an error saying why this machine does not let this process choose cc.
//
// It exists to diagnose the loopback: there the sender's congestion control runs on the
// same cores as the server. With BBR the sender paces its segments with high-resolution
// timers that fire, and transmit, on whichever core handled the ACK, often the receiver's,
// so part of the client's sending is done on the server's cores, interrupting its hashing;
// cubic sends straight from the ACK's processing. A remote client does either on its own
// machine.
func congestionClient(cc string) (*http.Client, error) {
	avail, err := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	if err != nil {
		return nil, fmt.Errorf("reading the available congestion controls: %w", err)
	}
	if !slices.Contains(strings.Fields(string(avail)), cc) {
		return nil, fmt.Errorf("congestion control %s is not available (%s)", cc, strings.TrimSpace(string(avail)))
	}
	// Available is not always allowed (net.ipv4.tcp_allowed_congestion_control binds
	// processes without CAP_NET_ADMIN): try it on a socket of its own first.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("a socket to try congestion control %s on: %w", cc, err)
	}
	err = unix.SetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc)
	unix.Close(fd)
	if err != nil {
		return nil, fmt.Errorf("congestion control %s is not allowed to this process: %w", cc, err)
	}
	// The dialer of http.DefaultTransport, plus the congestion control.
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc)
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
	return &http.Client{Transport: t, Timeout: benchClient.Timeout}, nil
}

// systemCongestion returns the congestion control new sockets get, or "unknown".
func systemCongestion() string {
	cc, err := os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(cc))
}
