package webhook

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := map[string]struct {
		ip   string
		want string // substring of the classification; "" = public
	}{
		"public v4":             {"93.184.215.14", ""},
		"public v6":             {"2606:4700::1111", ""},
		"loopback":              {"127.0.0.1", "loopback"},
		"loopback range":        {"127.255.0.9", "loopback"},
		"this network":          {"0.0.0.0", "unspecified"},
		"private 10":            {"10.1.2.3", "private"},
		"private 172":           {"172.31.255.255", "private"},
		"not private 172.32":    {"172.32.0.1", ""},
		"private 192.168":       {"192.168.0.1", "private"},
		"cgnat":                 {"100.64.0.1", "CGNAT"},
		"link-local":            {"169.254.1.1", "link-local"},
		"aws metadata":          {"169.254.169.254", "metadata"},
		"ecs metadata":          {"169.254.170.2", "metadata"},
		"alibaba metadata":      {"100.100.100.200", "metadata"},
		"oracle metadata":       {"192.0.0.192", "metadata"},
		"multicast":             {"224.0.0.1", "multicast"},
		"broadcast":             {"255.255.255.255", "reserved"},
		"documentation":         {"192.0.2.1", "documentation"},
		"benchmarking":          {"198.18.0.1", "benchmarking"},
		"v6 unspecified":        {"::", "unspecified"},
		"v6 loopback":           {"::1", "loopback"},
		"v4-mapped loopback":    {"::ffff:127.0.0.1", "loopback"},
		"v4-mapped public":      {"::ffff:93.184.215.14", ""},
		"v4-compatible":         {"::127.0.0.1", "IPv4-compatible"},
		"v6 link-local":         {"fe80::1", "link-local"},
		"v6 link-local zone":    {"fe80::1%eth0", "link-local"},
		"ula":                   {"fd12:3456::1", "unique local"},
		"aws v6 metadata":       {"fd00:ec2::254", "metadata"},
		"site-local":            {"fec0::1", "site-local"},
		"v6 multicast":          {"ff02::1", "multicast"},
		"v6 documentation":      {"2001:db8::1", "documentation"},
		"teredo":                {"2001::1", "IETF"},
		"nat64 of loopback":     {"64:ff9b::7f00:1", "NAT64 address of a loopback"},
		"nat64 of public":       {"64:ff9b::5db8:d70e", ""},
		"6to4 of private":       {"2002:0a00:0001::1", "6to4 address of a private"},
		"6to4 of public":        {"2002:5db8:d70e::1", ""},
		"local nat64":           {"64:ff9b:1::1", "local NAT64"},
		"discard":               {"100::1", "discard"},
		"new v6 documentation":  {"3fff::1", "documentation"},
		"ietf protocol v4 /24":  {"192.0.0.8", "IETF"},
		"6to4 relay anycast v4": {"192.88.99.1", "6to4 relay"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Classify(netip.MustParseAddr(tc.ip))
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("Classify(%s) = %q, want %q", tc.ip, got, tc.want)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	strict, err := NewPolicy(nil)
	if err != nil {
		t.Fatal(err)
	}
	allowing, err := NewPolicy([]string{"127.0.0.1", "10.0.0.0/8", "Hooks.Internal", "fd00::/8", "receiver"})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		url     string
		policy  *Policy
		refused bool   // refused as a non-public target (ErrRefusedTarget)
		invalid bool   // refused as malformed
		msg     string // substring of the error
	}{
		"public name":           {url: "https://example.com/hook?token=x", policy: strict},
		"public ip":             {url: "http://93.184.215.14:8080/hook", policy: strict},
		"public v6":             {url: "http://[2606:4700::1111]/hook", policy: strict},
		"trailing dot public":   {url: "https://example.com./hook", policy: strict},
		"loopback":              {url: "http://127.0.0.1:9000/hook", policy: strict, refused: true, msg: "loopback"},
		"loopback other":        {url: "http://127.0.0.2/", policy: strict, refused: true},
		"metadata ip":           {url: "http://169.254.169.254/latest/meta-data/", policy: strict, refused: true, msg: "metadata"},
		"metadata v6":           {url: "http://[fd00:ec2::254]/", policy: strict, refused: true, msg: "metadata"},
		"metadata google":       {url: "http://metadata.google.internal/computeMetadata/v1/", policy: strict, refused: true, msg: "metadata"},
		"metadata upper dot":    {url: "http://METADATA.google.internal./", policy: strict, refused: true},
		"metadata single":       {url: "http://metadata/", policy: strict, refused: true},
		"localhost":             {url: "http://localhost:3000/", policy: strict, refused: true, msg: "this machine"},
		"localhost upper":       {url: "http://LocalHost./", policy: strict, refused: true},
		"sub.localhost":         {url: "http://a.b.localhost/", policy: strict, refused: true},
		"escaped localhost":     {url: "http://%6cocalhost/", policy: strict, invalid: true},
		"dot internal":          {url: "http://db.corp.internal/", policy: strict, refused: true},
		"dot local":             {url: "http://printer.local/", policy: strict, refused: true},
		"single label":          {url: "http://receiver:8080/", policy: strict, refused: true, msg: "single-label"},
		"decimal ip":            {url: "http://2130706433/", policy: strict, refused: true, msg: "non-standard"},
		"hex ip":                {url: "http://0x7f000001/", policy: strict, refused: true},
		"hex dotted":            {url: "http://0x7f.1/", policy: strict, refused: true},
		"octal":                 {url: "http://0177.0.0.1/", policy: strict, refused: true},
		"short form":            {url: "http://127.1/", policy: strict, refused: true},
		"public short form":     {url: "http://8.8.2056/", policy: strict, refused: true},
		"private 10":            {url: "http://10.0.0.5/", policy: strict, refused: true, msg: "private"},
		"private 192.168":       {url: "http://192.168.1.1/", policy: strict, refused: true},
		"private 172":           {url: "http://172.16.0.1/", policy: strict, refused: true},
		"cgnat":                 {url: "http://100.64.1.1/", policy: strict, refused: true},
		"unspecified":           {url: "http://0.0.0.0:3000/", policy: strict, refused: true},
		"v6 unspecified":        {url: "http://[::]:3000/", policy: strict, refused: true},
		"v6 loopback":           {url: "http://[::1]/", policy: strict, refused: true},
		"v4-mapped":             {url: "http://[::ffff:127.0.0.1]/", policy: strict, refused: true},
		"v4-mapped hex":         {url: "http://[::ffff:7f00:1]/", policy: strict, refused: true},
		"link-local zone":       {url: "http://[fe80::1%25eth0]/", policy: strict, refused: true},
		"ula":                   {url: "http://[fd12::1]/", policy: strict, refused: true},
		"multicast":             {url: "http://224.0.0.251/", policy: strict, refused: true},
		"userinfo to loopback":  {url: "http://user:pw@127.0.0.1/", policy: strict, refused: true},
		"nil policy":            {url: "http://127.0.0.1/", policy: nil, refused: true},
		"ftp":                   {url: "ftp://example.com/x", policy: strict, invalid: true},
		"relative":              {url: "/hook", policy: strict, invalid: true},
		"no host":               {url: "http:///hook", policy: strict, invalid: true},
		"opaque":                {url: "http:example.com", policy: strict, invalid: true},
		"bad name":              {url: "http://exa_mple!.com/", policy: strict, invalid: true},
		"unicode name":          {url: "http://bücher.example/", policy: strict, invalid: true, msg: "xn--"},
		"allowed ip":            {url: "http://127.0.0.1:9000/hook", policy: allowing},
		"allowed cidr":          {url: "http://10.20.30.40/hook", policy: allowing},
		"allowed v6 cidr":       {url: "http://[fd00:ec2::254]/", policy: allowing},
		"allowed name":          {url: "http://hooks.internal/", policy: allowing},
		"allowed single label":  {url: "http://receiver:8080/", policy: allowing},
		"not allowed neighbour": {url: "http://127.0.0.2/", policy: allowing, refused: true},
		"allowed name only":     {url: "http://other.internal/", policy: allowing, refused: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.policy.CheckURL(tc.url)
			switch {
			case tc.refused:
				if !errors.Is(err, ErrRefusedTarget) {
					t.Fatalf("CheckURL(%q) = %v, want a refusal", tc.url, err)
				}
				if !strings.Contains(err.Error(), "WEBHOOK_ALLOWED_HOSTS") && !strings.Contains(err.Error(), "non-standard") {
					t.Errorf("refusal %q does not say how to allow it", err)
				}
			case tc.invalid:
				if err == nil || errors.Is(err, ErrRefusedTarget) {
					t.Fatalf("CheckURL(%q) = %v, want a malformed-URL error", tc.url, err)
				}
			default:
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want accepted", tc.url, err)
				}
			}
			if tc.msg != "" && (err == nil || !strings.Contains(err.Error(), tc.msg)) {
				t.Errorf("CheckURL(%q) = %v, want a message with %q", tc.url, err, tc.msg)
			}
		})
	}
}

func TestParseAllowedHost(t *testing.T) {
	tests := map[string]struct {
		in   string
		want string // the prefix or name; "" = refused
	}{
		"ip":         {"127.0.0.1", "127.0.0.1/32"},
		"v6":         {"::1", "::1/128"},
		"v6 bracket": {"[::1]", "::1/128"},
		"mapped":     {"::ffff:10.0.0.1", "10.0.0.1/32"},
		"cidr":       {"10.1.2.3/8", "10.0.0.0/8"},
		"v6 cidr":    {"fd00::/8", "fd00::/8"},
		"name":       {"Hooks.Example.COM.", "hooks.example.com"},
		"label":      {"receiver", "receiver"},
		"url":        {"http://x/", ""},
		"port":       {"example.com:80", ""},
		"wildcard":   {"*.example.com", ""},
		"space":      {"a b", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v, err := ParseAllowedHost(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("ParseAllowedHost(%q) = %v, want an error", tc.in, v)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAllowedHost(%q): %v", tc.in, err)
			}
			var got string
			switch v := v.(type) {
			case netip.Prefix:
				got = v.String()
			case string:
				got = v
			}
			if got != tc.want {
				t.Fatalf("ParseAllowedHost(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"plain":    {"https://example.com/hook", "https://example.com/hook"},
		"query":    {"https://example.com/hook?token=s3cret&x=1", "https://example.com/hook?[redacted]"},
		"userinfo": {"https://user:s3cret@example.com:8443/a/b", "https://example.com:8443/a/b"},
		"fragment": {"https://example.com/h#s3cret", "https://example.com/h"},
		"garbage":  {"http://[::1", "(unparsable URL)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Redact(tc.in); got != tc.want {
				t.Fatalf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
