package plugintest_test

import (
	"bytes"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk/partfile"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

func TestObject(t *testing.T) {
	o := plugintest.NewObject("a/b", 10, 4)
	if o.Parts() != 3 || len(o.Part(2)) != 2 || o.Info(1).Size != 4 || !bytes.Equal(bytes.Join([][]byte{o.Part(0), o.Part(1), o.Part(2)}, nil), o.Data) {
		t.Errorf("object %+v is cut wrong", o.Spec)
	}
	if bytes.Equal(o.Data, plugintest.NewObject("a/c", 10, 4).Data) {
		t.Error("objects of different keys have the same content")
	}
}

// A forged handle is partfile's format: Parse takes a valid one, and a resized one keeps
// its id and key.
func TestForgeHandle(t *testing.T) {
	h := plugintest.ForgeHandle("dir/x", 20, 10, 2)
	d, err := partfile.Parse(h)
	if err != nil || d.Key != "dir/x" || d.Size != 20 || d.Parts != 2 {
		t.Fatalf("Parse(forged) = %+v, %v", d, err)
	}
	r, err := partfile.Parse(plugintest.Resize(t, h, 10, 10, 1))
	if err != nil || r.ID != d.ID || r.Key != d.Key || r.Size != 10 {
		t.Errorf("Parse(resized) = %+v, %v", r, err)
	}
	if _, err := partfile.Parse(plugintest.ForgeHandle("../x", 1, 1, 1)); err == nil {
		t.Error("a forged handle with a bad key parses")
	}
}
