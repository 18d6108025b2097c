package sdk_test

import (
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

func TestTempNames(t *testing.T) {
	t.Parallel()
	var names sdk.TempNames
	if !names.Claim("a.tmp") || names.Claim("a.tmp") {
		t.Fatal("a name must be claimable once")
	}
	if !names.Claim("b.tmp") {
		t.Fatal("another name is free")
	}
	names.Release("a.tmp")
	if !names.Claim("a.tmp") {
		t.Fatal("a released name is free again")
	}
	// Concurrent claims of one name: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 16 {
		wg.Go(func() {
			if names.Claim("c.tmp") {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d concurrent claims of one name won, want 1", won)
	}
}

func TestTempName(t *testing.T) {
	t.Parallel()
	if got := sdk.TempName(".a", ".tmp"); got != ".a.tmp" {
		t.Errorf("TempName = %q", got)
	}
	for _, prefix := range []string{strings.Repeat("x", 300), "." + strings.Repeat("é", 200), strings.Repeat("日", 100)} {
		for _, n := range []string{sdk.TempName(prefix, ".tmp"), sdk.RandomTempName(prefix, ".old")} {
			if len(n) > sdk.MaxSegmentLength || !utf8.ValidString(n) || !strings.HasPrefix(prefix, n[:10]) {
				t.Errorf("temporary name of a %d-byte prefix = %q (%d bytes)", len(prefix), n, len(n))
			}
		}
		if r := sdk.RandomTempName(prefix, ".tmp"); r == sdk.RandomTempName(prefix, ".tmp") || !strings.HasSuffix(r, ".tmp") {
			t.Errorf("RandomTempName is not random or lost its suffix: %q", r)
		}
	}
}
