package procs

import (
	"runtime"
	"testing"
)

func TestSet(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))

	t.Setenv("GOMAXPROCS", "")
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	if got := Set(); got != PerCore*def || runtime.GOMAXPROCS(0) != got {
		t.Fatalf("Set() = %d with GOMAXPROCS %d in effect, want %d (default %d)", got, runtime.GOMAXPROCS(0), PerCore*def, def)
	}

	// The operator's setting stands (the runtime applied it at start; here by hand).
	t.Setenv("GOMAXPROCS", "3")
	runtime.GOMAXPROCS(3)
	if got := Set(); got != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Fatalf("Set() = %d with GOMAXPROCS=3 in the environment, GOMAXPROCS %d in effect; want 3", got, runtime.GOMAXPROCS(0))
	}
}
