package main

import (
	"testing"
	"time"
)

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	tests := map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		100 << 20: "100.0 MiB", 5 << 30: "5.0 GiB", 3 << 40: "3.0 TiB"}
	for in, want := range tests {
		if got := humanBytes(in); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	t.Parallel()
	tests := map[time.Duration]string{1500 * time.Millisecond: "1.5s", 45 * time.Second: "45s",
		187 * time.Second: "3m07s", 2*time.Hour + 5*time.Minute: "2h05m"}
	for in, want := range tests {
		if got := humanDuration(in); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	tests := map[string]string{"big.bin": "big.bin", "/tmp/a-b_c/d.bin": "/tmp/a-b_c/d.bin",
		"my file.bin": "'my file.bin'", "it's": `'it'\''s'`, "": "''", "$HOME": "'$HOME'"}
	for in, want := range tests {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPartRanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []int
		want string
	}{{nil, ""}, {[]int{4}, "4"}, {[]int{0, 1, 2, 3, 7, 9, 10}, "0-3, 7, 9-10"}}
	for _, tc := range tests {
		if got := partRanges(tc.in); got != tc.want {
			t.Errorf("partRanges(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
