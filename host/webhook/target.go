package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefusedTarget is returned (wrapped) for a webhook receiver the Policy does not allow.
var ErrRefusedTarget = errors.New("webhook receiver not allowed")

// Policy decides which webhook receivers may be reached. By default it refuses every
// address that is not public (loopback, private, link-local, unique local, CGNAT,
// multicast, unspecified, documentation and other special-purpose ranges, cloud metadata
// endpoints) and host names that only resolve inside a network (localhost, *.internal,
// single-label names, ...). Entries of WEBHOOK_ALLOWED_HOSTS allow receivers explicitly.
//
// A URL is checked twice: by CheckURL when an upload is created, and by the Sender's dialer
// on the address each connection is actually made to, after DNS resolution, so that a name
// that resolves to a refused address (DNS rebinding) is refused too.
//
// The zero value and nil refuse every non-public target. A Policy is safe for concurrent use.
type Policy struct {
	names map[string]bool // allowed host names, lower case, no trailing dot
	nets  []netip.Prefix  // allowed addresses
}

// NewPolicy returns the policy allowing entries (the WEBHOOK_ALLOWED_HOSTS list): host
// names (matched exactly, case-insensitively), IP addresses and CIDR prefixes.
func NewPolicy(entries []string) (*Policy, error) {
	p := &Policy{names: map[string]bool{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		kind, err := ParseAllowedHost(e)
		if err != nil {
			return nil, err
		}
		switch v := kind.(type) {
		case netip.Prefix:
			p.nets = append(p.nets, v)
		case string:
			p.names[v] = true
		}
	}
	return p, nil
}

// ParseAllowedHost parses one WEBHOOK_ALLOWED_HOSTS entry: a CIDR prefix or an IP address
// (returned as a netip.Prefix) or a host name (returned lower case, as a string).
func ParseAllowedHost(e string) (any, error) {
	if pfx, err := netip.ParsePrefix(e); err == nil {
		return pfx.Masked(), nil
	}
	if ip, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
		ip = ip.Unmap().WithZone("")
		return netip.PrefixFrom(ip, ip.BitLen()), nil
	}
	name := normalizeName(e)
	if !validHostName(name) {
		return nil, fmt.Errorf("%q is not a host name, an IP address or a CIDR prefix such as 10.0.0.0/8", e)
	}
	return name, nil
}

// CheckURL checks a webhook URL given at init: an absolute http or https URL whose host is
// not refused. It does not resolve names (the dialer checks what they resolve to). The
// error says why, in words fit for the client.
func (p *Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return errors.New("webhook_url must be an absolute http or https URL")
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("webhook_url has no host")
	}
	return p.checkHost(host)
}

// checkHost checks a URL's host (a name or an IP literal, without port or brackets).
func (p *Policy) checkHost(host string) error {
	name := normalizeName(host)
	if p.allowsName(name) {
		return nil
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		return p.checkIP(ip)
	}
	if looksNumeric(name) {
		// WHATWG URL parsers and inet_aton read 2130706433, 0x7f.1 and 0177.0.0.1 as IPv4
		// addresses (127.0.0.1); only the dotted-decimal form is taken.
		return fmt.Errorf("%w: webhook_url host %q is an IP address in a non-standard form (write it as four decimal numbers, a.b.c.d)", ErrRefusedTarget, host)
	}
	if !validHostName(name) {
		return fmt.Errorf("webhook_url host %q is not a valid host name (write international names in their xn-- form)", host)
	}
	if why := internalName(name); why != "" {
		return fmt.Errorf("%w: webhook_url host %q %s; allow it with WEBHOOK_ALLOWED_HOSTS if the receiver is meant to be internal", ErrRefusedTarget, host, why)
	}
	return nil
}

// checkIP refuses a non-public address unless an allowed prefix holds it.
func (p *Policy) checkIP(ip netip.Addr) error {
	ip = ip.WithZone("")
	if p.allowsIP(ip) {
		return nil
	}
	if why := Classify(ip); why != "" {
		return fmt.Errorf("%w: %s is %s; allow it with WEBHOOK_ALLOWED_HOSTS if the receiver is meant to be internal", ErrRefusedTarget, ip, why)
	}
	return nil
}

func (p *Policy) allowsName(name string) bool { return p != nil && p.names[name] }

func (p *Policy) allowsIP(ip netip.Addr) bool {
	if p == nil {
		return false
	}
	u := ip.Unmap()
	for _, n := range p.nets {
		if n.Contains(ip) || n.Contains(u) {
			return true
		}
	}
	return false
}

// DialContext returns the dial function of the webhook client: it dials addr ("host:port")
// with resolver r (nil: the system's). When host is an allowed name any address it resolves
// to is taken; otherwise every address a connection is attempted to is checked first,
// after resolution, so that DNS rebinding is caught.
func (p *Policy) DialContext(timeout time.Duration, r *net.Resolver) func(ctx context.Context, network, addr string) (net.Conn, error) {
	open := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Resolver: r}
	checked := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Resolver: r,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot check address %q: %v", ErrRefusedTarget, address, err)
			}
			return p.checkIP(ap.Addr())
		}}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if p.allowsName(normalizeName(host)) {
			return open.DialContext(ctx, network, addr)
		}
		if err := p.checkHost(host); err != nil {
			return nil, err
		}
		return checked.DialContext(ctx, network, addr)
	}
}

func normalizeName(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// validHostName reports whether name is made of DNS labels (letters, digits, '-', '_').
func validHostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// looksNumeric reports whether a URL parser would take name for an IPv4 address: its last
// label is a number (decimal, or hex with 0x), as in 2130706433, 0x7f.1 or 127.1.
func looksNumeric(name string) bool {
	labels := strings.Split(name, ".")
	last := labels[len(labels)-1]
	if h, ok := strings.CutPrefix(last, "0x"); ok {
		for i := 0; i < len(h); i++ {
			if !strings.ContainsRune("0123456789abcdef", rune(h[i])) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			return false
		}
	}
	return last != ""
}

// Host names of cloud metadata services and names that resolve only on this machine or
// inside a network.
var (
	internalNames = map[string]string{
		"localhost":                  "is this machine",
		"localhost.localdomain":      "is this machine",
		"ip6-localhost":              "is this machine",
		"ip6-loopback":               "is this machine",
		"metadata":                   "is a cloud metadata service",
		"metadata.google.internal":   "is a cloud metadata service",
		"metadata.goog":              "is a cloud metadata service",
		"instance-data":              "is a cloud metadata service",
		"instance-data.ec2.internal": "is a cloud metadata service",
	}
	internalSuffixes = map[string]string{
		".localhost": "is this machine",
		".local":     "is a multicast-DNS name of the local network",
		".internal":  "is a private-use name (.internal)",
		".intranet":  "is a private-use name",
		".lan":       "is a private-use name",
		".home.arpa": "is a home-network name",
		".arpa":      "is a reverse-DNS name",
	}
)

// internalName says why name is refused ("" when it is not).
func internalName(name string) string {
	if why, ok := internalNames[name]; ok {
		return why
	}
	for suffix, why := range internalSuffixes {
		if strings.HasSuffix(name, suffix) {
			return why
		}
	}
	if !strings.Contains(name, ".") {
		return "is a single-label name, which resolves through the local search domains"
	}
	return ""
}

// special is a non-public range and what it is.
type special struct {
	prefix netip.Prefix
	what   string
}

// specialRanges lists the address ranges webhooks may not reach (IANA special-purpose
// registries, RFC 6890 and successors). IPv4-mapped IPv6 addresses are checked as IPv4;
// NAT64 and 6to4 addresses by the IPv4 address they embed.
var specialRanges = func() []special {
	var out []special
	for _, r := range []struct{ cidr, what string }{
		{"0.0.0.0/8", "an unspecified (\"this network\") address"},
		{"10.0.0.0/8", "a private address"},
		{"100.64.0.0/10", "a shared (CGNAT) address"},
		{"127.0.0.0/8", "a loopback address"},
		{"169.254.0.0/16", "a link-local address"},
		{"172.16.0.0/12", "a private address"},
		{"192.0.0.0/24", "an IETF protocol address"},
		{"192.0.2.0/24", "a documentation address"},
		{"192.88.99.0/24", "a 6to4 relay address"},
		{"192.168.0.0/16", "a private address"},
		{"198.18.0.0/15", "a benchmarking address"},
		{"198.51.100.0/24", "a documentation address"},
		{"203.0.113.0/24", "a documentation address"},
		{"224.0.0.0/4", "a multicast address"},
		{"240.0.0.0/4", "a reserved address"},
		{"::/128", "the unspecified address"},
		{"::1/128", "a loopback address"},
		{"::/96", "an IPv4-compatible address"},
		{"64:ff9b:1::/48", "a local NAT64 address"},
		{"100::/64", "a discard-only address"},
		{"2001::/23", "an IETF protocol address"},
		{"2001:db8::/32", "a documentation address"},
		{"3fff::/20", "a documentation address"},
		{"fc00::/7", "a unique local address"},
		{"fe80::/10", "a link-local address"},
		{"fec0::/10", "a site-local address"},
		{"ff00::/8", "a multicast address"},
	} {
		out = append(out, special{netip.MustParsePrefix(r.cidr), r.what})
	}
	return out
}()

// metadataAddrs are the cloud metadata endpoints, named in refusals.
var metadataAddrs = map[netip.Addr]bool{
	netip.MustParseAddr("169.254.169.254"): true, // AWS, GCP, Azure, OpenStack, ...
	netip.MustParseAddr("169.254.170.2"):   true, // AWS ECS task metadata
	netip.MustParseAddr("fd00:ec2::254"):   true, // AWS IPv6
	netip.MustParseAddr("100.100.100.200"): true, // Alibaba Cloud
	netip.MustParseAddr("192.0.0.192"):     true, // Oracle Cloud
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// Classify says what kind of non-public address ip is, or "" for a public address.
func Classify(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return "not an address"
	}
	if metadataAddrs[ip] {
		return "a cloud metadata endpoint"
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			if why := Classify(netip.AddrFrom4([4]byte(b[12:16]))); why != "" {
				return "a NAT64 address of " + why
			}
			return ""
		case sixTo4.Contains(ip):
			if why := Classify(netip.AddrFrom4([4]byte(b[2:6]))); why != "" {
				return "a 6to4 address of " + why
			}
			return ""
		}
	}
	for _, s := range specialRanges {
		if s.prefix.Contains(ip) {
			return s.what
		}
	}
	return ""
}

// Redact returns raw without its user information, query and fragment, for logs: they may
// carry secrets.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	out := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	s := out.String()
	if u.RawQuery != "" || u.ForceQuery {
		s += "?[redacted]"
	}
	return s
}
