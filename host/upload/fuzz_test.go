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
		"a\x00b", "vidéos/été/f.bin", "a//b", "a/./b", ".hidden", "a/b/", "%2e%2e/x", "\u202e.exe", strings.Repeat("a/", 300),
		"a\u200bb", "\ufeffx", "x\u2066y", "CON", "nul.txt", "a/Com1/b", "lpt\u00b9", "a ./b", " a", "\u3164", "\U000E0041"} {
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
			if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co) {
				t.Fatalf("accepted the control, format or invisible character %U in %q", r, filename)
			}
		}
		for _, seg := range strings.Split(filename, "/") {
			stem, _, _ := strings.Cut(seg, ".")
			switch strings.ToUpper(strings.TrimRight(stem, " ")) {
			case "CON", "PRN", "AUX", "NUL", "COM1", "COM9", "LPT1", "LPT9":
				t.Fatalf("accepted the device name %q in %q", seg, filename)
			}
			if strings.HasPrefix(seg, " ") || strings.HasSuffix(seg, " ") || strings.HasSuffix(seg, ".") {
				t.Fatalf("accepted the component %q (leading space, trailing dot or space) in %q", seg, filename)
			}
		}
	})
}
