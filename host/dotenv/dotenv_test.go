package dotenv

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// parseCases are .env contents and what they set; the bash reader of the deploy scripts
// must agree (TestBashReaderAgrees).
var parseCases = map[string]struct {
	in   string
	want map[string]string
}{
	"plain":               {"A=1\nB=two words\n", map[string]string{"A": "1", "B": "two words"}},
	"comments and blanks": {"# a comment\n\n   # indented comment\nA=1\n\n", map[string]string{"A": "1"}},
	"export prefix":       {"export A=1\n  export B='x'\n", map[string]string{"A": "1", "B": "x"}},
	"trailing comment":    {"A=1 # the port\nB=x#y\n", map[string]string{"A": "1", "B": "x#y"}},
	"single quotes literal": {`A='a "b" \n # not a comment'` + "\n",
		map[string]string{"A": `a "b" \n # not a comment`}},
	"double quotes unescape": {`A="line1\nline2 \"q\" back\\slash # kept"` + "\n",
		map[string]string{"A": "line1\nline2 \"q\" back\\slash # kept"}},
	"spaces around":    {"  A  =  1  \n", map[string]string{"A": "1"}},
	"empty value":      {"A=\nB=''\nC=\"\"\n", map[string]string{"A": "", "B": "", "C": ""}},
	"equals in value":  {"A=b=c\n", map[string]string{"A": "b=c"}},
	"no expansion":     {"A=$HOME\nB=\"${HOME}\"\n", map[string]string{"A": "$HOME", "B": "${HOME}"}},
	"CRLF":             {"A=1\r\nB='2'\r\n", map[string]string{"A": "1", "B": "2"}},
	"last line wins":   {"A=1\nA=2\n", map[string]string{"A": "2"}},
	"no final newline": {"A=1", map[string]string{"A": "1"}},
	"init.sh output": {"# chunked-uploader settings.\nAPI_KEY=0123abcd\nSTORAGE_BACKEND=local\n# SMB_HOST=192.168.1.100\n",
		map[string]string{"API_KEY": "0123abcd", "STORAGE_BACKEND": "local"}},
}

func TestParse(t *testing.T) {
	for name, tc := range parseCases {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("Parse(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// errorCases are .env contents that do not parse, with the error.
var errorCases = map[string]struct{ in, msg string }{
	"no equals":           {"A=1\nJUSTAKEY\n", "line 2: expected KEY=VALUE"},
	"unterminated single": {"A='abc\n", "line 1: unterminated quote"},
	"unterminated double": {"# c\nA=\"abc\n", "line 2: unterminated quote"},
	"lone quote":          {"A='\n", "line 1: unterminated quote"},
	"space in key":        {"A B=1\n", "line 1: expected KEY=VALUE"},
	"quote in key":        {"'A'=1\n", "line 1: expected KEY=VALUE"},
	"empty key":           {"=1\n", "line 1: expected KEY=VALUE"},
}

func TestParseErrors(t *testing.T) {
	for name, tc := range errorCases {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", tc.in, got)
			}
			if err.Error() != tc.msg {
				t.Fatalf("Parse(%q): %q, want %q", tc.in, err, tc.msg)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.env")
	if err := os.WriteFile(good, []byte("export API_KEY='k'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(good)
	if err != nil || got["API_KEY"] != "k" {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}

	missing := filepath.Join(dir, "missing.env")
	if _, err := ReadFile(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("ReadFile(missing) = %v, want fs.ErrNotExist naming the path", err)
	}

	bad := filepath.Join(dir, "bad.env")
	if err := os.WriteFile(bad, []byte("A=1\nnot a setting\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(bad); err == nil || err.Error() != bad+": line 2: expected KEY=VALUE" {
		t.Fatalf("ReadFile(bad) = %v, want the path and the line", err)
	}
}

// TestBashReaderAgrees: scripts/dotenv.sh, which the deploy scripts source, reads every case
// as Parse does, and refuses the same files with the same line.
func TestBashReaderAgrees(t *testing.T) {
	lib, err := filepath.Abs(filepath.Join("..", "..", "scripts", "dotenv.sh"))
	if err != nil {
		t.Fatal(err)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed to test %s: %v", lib, err)
	}
	// get FILE KEY prints the value of KEY, "<unset>", or the error die prints.
	const script = `set -euo pipefail; die() { printf 'die: %s' "$*"; exit 1; }; . "$1"; env_file=$2; ` +
		`if dotenv_get "$3"; then printf 'value: %s' "$REPLY"; else printf '<unset>'; fi`
	get := func(t *testing.T, content, key string) string {
		t.Helper()
		path := filepath.Join(t.TempDir(), ".env")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _ := exec.Command(bash, "-c", script, "bash", lib, path, key).Output()
		return strings.ReplaceAll(string(out), path+" ", "")
	}
	for name, tc := range parseCases {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.want {
				if got := get(t, tc.in, k); got != "value: "+v {
					t.Errorf("%s: bash reads %q, Parse %q", k, got, "value: "+v)
				}
			}
			if got := get(t, tc.in, "NOT_SET_ANYWHERE"); got != "<unset>" {
				t.Errorf("an absent key: bash says %q", got)
			}
		})
	}
	for name, tc := range errorCases {
		t.Run(name, func(t *testing.T) {
			if got := get(t, tc.in, "A"); got != "die: "+tc.msg {
				t.Errorf("bash says %q, Parse %q", got, tc.msg)
			}
		})
	}
}
