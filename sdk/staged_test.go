package sdk

import (
	"path/filepath"
	"testing"
)

func TestInDir(t *testing.T) {
	dir := filepath.Join(string(filepath.Separator), "srv", "staging")
	for path, want := range map[string]bool{
		filepath.Join(dir, "u", "000001.part"): true,
		filepath.Join(dir, "x"):                true,
		dir:                                    false, // the directory itself
		filepath.Dir(dir):                      false,
		filepath.Join(dir+"2", "x"):            false, // a sibling sharing the prefix
		dir + "/../staging/x":                  false, // not clean
		dir + "/./x":                           false,
		"staging/x":                            false, // relative
		filepath.Join(dir, "..", "other", "x"): false,
		"":                                     false,
	} {
		if got := InDir(dir, path); got != want {
			t.Errorf("InDir(%q, %q) = %v, want %v", dir, path, got, want)
		}
	}
	if InDir("", filepath.Join(dir, "x")) {
		t.Error("InDir with no directory accepted a path")
	}
}
