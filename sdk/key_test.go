package sdk_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

func TestValidKey(t *testing.T) {
	t.Parallel()
	seg255 := strings.Repeat("s", sdk.MaxSegmentLength)
	key1024 := strings.Repeat("a/", 511) + "bc" // exactly MaxKeyLength bytes
	tests := map[string]struct {
		key   string
		valid bool
	}{
		"simple":                  {"file.bin", true},
		"nested":                  {"a/b/c/d.bin", true},
		"files prefix":            {"files/0192_movie.mp4", true},
		"unicode and spaces":      {"vidéos/2024/my file.mp4", true},
		"cjk":                     {"日本語/ファイル 1.txt", true},
		"emoji":                   {"party 🎉.txt", true},
		"hidden file":             {".hidden", true},
		"dots inside":             {"a..b/...c", true},
		"dash underscore tilde":   {"a-b_c~d+e=f,g;h@i#j$k%l&m(n)o[p]q{r}s'", true},
		"inner spaces":            {"a  b/c d", true},
		"max segment":             {seg255, true},
		"max key":                 {key1024, true},
		"empty":                   {"", false},
		"absolute":                {"/abs", false},
		"trailing slash":          {"a/", false},
		"double slash":            {"a//b", false},
		"dotdot inside":           {"a/../b", false},
		"dotdot":                  {"..", false},
		"dotdot prefix":           {"../x", false},
		"dot":                     {".", false},
		"dot segment":             {"a/./b", false},
		"backslash":               {`a\b`, false},
		"backslash traversal":     {`..\x`, false},
		"drive letter":            {"C:/x", false},
		"colon":                   {"a:b", false},
		"star":                    {"a*b", false},
		"question mark":           {"a?b", false},
		"double quote":            {`a"b`, false},
		"less than":               {"a<b", false},
		"greater than":            {"a>b", false},
		"pipe":                    {"a|b", false},
		"nul":                     {"a\x00b", false},
		"newline":                 {"a\nb", false},
		"tab":                     {"a\tb", false},
		"delete":                  {"a\x7fb", false},
		"c1 control":              {"a\u0085b", false},
		"invalid utf8":            {"a\xffb", false},
		"trailing dot":            {"name.", false},
		"trailing dot in dir":     {"dir./name", false},
		"trailing space":          {"name ", false},
		"leading space":           {" name", false},
		"segment over the limit":  {seg255 + "s", false},
		"key over the limit":      {key1024 + "e", false},
		"long key of short parts": {strings.Repeat("ab/", 400) + "c", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := sdk.ValidKey(tc.key)
			switch {
			case tc.valid && err != nil:
				t.Errorf("ValidKey(%q) = %v, want nil", tc.key, err)
			case !tc.valid && !errors.Is(err, sdk.ErrInvalidKey):
				t.Errorf("ValidKey(%q) = %v, want an error wrapping ErrInvalidKey", tc.key, err)
			}
		})
	}
}

func TestValidSegment(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		seg   string
		valid bool
	}{
		"name":  {"name.txt", true},
		"empty": {"", false},
		"slash": {"a/b", true}, // a segment is checked character by character; '/' splits keys
		"dot":   {".", false},
		"dots":  {"..", false},
		"colon": {"a:b", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := sdk.ValidSegment(tc.seg); (err == nil) != tc.valid {
				t.Errorf("ValidSegment(%q) = %v, want valid=%v", tc.seg, err, tc.valid)
			}
		})
	}
}
