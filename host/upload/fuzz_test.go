package upload

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// FuzzValidateFilename: an accepted filename is never rewritten, never leaves the root,
// and makes a key every backend accepts; a refused one is refused with invalid_filename.
func FuzzValidateFilename(f *testing.F) {
	for _, s := range []string{"movie.mp4", "videos/2024/movie.mp4", "../x", "a/../b", "/etc/passwd", `a\\b`, "C:/x",
		"a\x00b", "vidéos/été/f.bin", "a//b", "a/./b", ".hidden", "a/b/", "%2e%2e/x", "\u202e.exe", strings.Repeat("a/", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, filename string) {
		path, name, err := ValidateFilename(filename)
		if err != nil {
			if host.ErrorCode(err) != host.CodeInvalidFilename {
				t.Fatalf("refused with %v", err)
			}
			return
		}
		joined := name
		if path != "" {
			joined = path + "/" + name
		}
		if joined != filename {
			t.Fatalf("rewritten: %q -> %q + %q", filename, path, name)
		}
		if err := sdk.ValidKey(host.ObjectKey("00000000-0000-0000-0000-000000000000", path, name)); err != nil {
			t.Fatalf("accepted %q makes an invalid key: %v", filename, err)
		}
		if !utf8.ValidString(filename) || strings.HasPrefix(filename, "/") || strings.ContainsAny(filename, "\\\x00:") {
			t.Fatalf("accepted %q", filename)
		}
		for _, seg := range strings.Split(filename, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted %q with segment %q", filename, seg)
			}
		}
		for _, r := range filename {
			if unicode.IsControl(r) {
				t.Fatalf("accepted a control character in %q", filename)
			}
		}
	})
}
