package sdk

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"unicode/utf8"
)

// TempNames is the set of temporary file names a plugin process is writing. A backend that
// writes a Put to a temporary file of a fixed name ("<name>.tmp", so that a retry after a
// crash replaces the remains of the interrupted attempt) claims the name first: a name
// that is not claimed but exists is such a remain, while a claimed one belongs to a Put of
// the same key running now, which must get another name (RandomTempName). The zero value
// is empty and ready; it is safe for concurrent use.
type TempNames struct {
	mu    sync.Mutex
	names map[string]bool
}

// Claim marks name as being written and reports whether it was free.
func (t *TempNames) Claim(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.names[name] {
		return false
	}
	if t.names == nil {
		t.names = map[string]bool{}
	}
	t.names[name] = true
	return true
}

// Release marks name as no longer being written.
func (t *TempNames) Release(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.names, name)
}

// TempName returns prefix + suffix, with prefix shortened (at a character boundary) so
// that the name is at most MaxSegmentLength bytes: a temporary name made from the longest
// valid key segment still fits the file systems' limit.
func TempName(prefix, suffix string) string {
	if maxLen := MaxSegmentLength - len(suffix); len(prefix) > maxLen {
		prefix = prefix[:max(maxLen, 0)]
		for !utf8.ValidString(prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	return prefix + suffix
}

// RandomTempName returns prefix + "." + 16 random hex digits + suffix, shortened as
// TempName does.
func RandomTempName(prefix, suffix string) string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // never fails
	return TempName(prefix, "."+hex.EncodeToString(rnd[:])+suffix)
}
