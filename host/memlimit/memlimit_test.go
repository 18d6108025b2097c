package memlimit

import (
	"runtime/debug"
	"testing"
)

func TestLimitFollowsPartWrites(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	l := New()
	if got := debug.SetMemoryLimit(-1); got != Base {
		t.Fatalf("limit with nothing in flight %d, want %d", got, Base)
	}
	l.PartWrites(BaseParts)
	if got := debug.SetMemoryLimit(-1); got != Base {
		t.Fatalf("limit with %d in flight %d, want %d", BaseParts, got, Base)
	}
	l.PartWrites(BaseParts + 10)
	if got, want := debug.SetMemoryLimit(-1), int64(Base+10*PerPart); got != want {
		t.Fatalf("limit with %d in flight %d, want %d", BaseParts+10, got, want)
	}
	l.PartWrites(1)
	if got := debug.SetMemoryLimit(-1); got != Base {
		t.Fatalf("limit after the writes ended %d, want %d", got, Base)
	}
}

func TestOperatorLimitWins(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "1GiB")
	before := debug.SetMemoryLimit(-1)
	l := New()
	l.PartWrites(100)
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Fatalf("limit changed to %d although GOMEMLIMIT is set", got)
	}
}
