package upload

import (
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/host"
)

func TestFilenameRules(t *testing.T) {
	tests := map[string]struct {
		in  string
		ok  bool
		msg string // substring of the refusal
	}{
		"plain":                 {in: "report.pdf", ok: true},
		"emoji":                 {in: "photos/🎉 party.jpg", ok: true},
		"emoji variation":       {in: "❤️.txt", ok: true},
		"nbsp":                  {in: "été\u00a02024.mp4", ok: true},
		"arabic":                {in: "مستند.pdf", ok: true},
		"console-like":          {in: "console.log", ok: true},
		"com10":                 {in: "COM10.txt", ok: true},
		"lpt in name":           {in: "lpt1x.bin", ok: true},
		"nul inside":            {in: "null.txt", ok: true},
		"device later":          {in: "a.con", ok: true},
		"rlo":                   {in: "invoice\u202egpj.exe", msg: "bidirectional"},
		"lro":                   {in: "a\u202db.txt", msg: "bidirectional"},
		"lrm":                   {in: "a\u200e.txt", msg: "bidirectional"},
		"isolate":               {in: "a\u2067b.txt", msg: "bidirectional"},
		"arabic letter mark":    {in: "a\u061c.txt", msg: "bidirectional"},
		"zero-width space":      {in: "pay\u200bpal.pdf", msg: "format"},
		"zero-width joiner":     {in: "a\u200d.txt", msg: "format"},
		"zero-width non-joiner": {in: "a\u200c.txt", msg: "format"},
		"word joiner":           {in: "a\u2060.txt", msg: "format"},
		"bom":                   {in: "\ufeffa.txt", msg: "format"},
		"soft hyphen":           {in: "in\u00advoice.pdf", msg: "format"},
		"tag":                   {in: "a\U000E0041.txt", msg: "format"},
		"in directory":          {in: "dir\u202e/a.txt", msg: "bidirectional"},
		"line separator":        {in: "a\u2028b.txt", msg: "separator"},
		"paragraph separator":   {in: "a\u2029b.txt", msg: "separator"},
		"private use":           {in: "a\ue000.txt", msg: "private-use"},
		"noncharacter":          {in: "a\ufdd0.txt", msg: "noncharacter"},
		"noncharacter plane":    {in: "a\U0001fffe.txt", msg: "noncharacter"},
		"hangul filler":         {in: "\u3164.txt", msg: "filler"},
		"braille blank":         {in: "a\u2800.txt", msg: "filler"},
		"grapheme joiner":       {in: "a\u034f.txt", msg: "filler"},
		"con":                   {in: "CON", msg: "device"},
		"con lower":             {in: "con", msg: "device"},
		"con mixed ext":         {in: "Con.txt", msg: "device"},
		"nul two exts":          {in: "nul.tar.gz", msg: "device"},
		"prn dir":               {in: "prn/x.txt", msg: "device"},
		"aux deep":              {in: "a/b/AUX/c.bin", msg: "device"},
		"com1":                  {in: "COM1", msg: "device"},
		"com9 ext":              {in: "com9.log", msg: "device"},
		"com0":                  {in: "com0", msg: "device"},
		"lpt1":                  {in: "LPT1.txt", msg: "device"},
		"lpt superscript":       {in: "lpt¹.txt", msg: "device"},
		"conin":                 {in: "CONIN$", msg: "device"},
		"device space ext":      {in: "nul .txt", msg: "device"},
		"trailing dot":          {in: "a./b.txt"},
		"trailing space":        {in: "a /b.txt"},
		"trailing dot name":     {in: "readme."},
		"trailing space name":   {in: "readme.txt "},
		"leading space":         {in: " a.txt"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := ValidateFilename(tc.in)
			if tc.ok {
				if err != nil {
					t.Fatalf("ValidateFilename(%q) = %v, want accepted", tc.in, err)
				}
				return
			}
			if host.ErrorCode(err) != host.CodeInvalidFilename {
				t.Fatalf("ValidateFilename(%q) = %v, want invalid_filename", tc.in, err)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ValidateFilename(%q) = %v, want a message about %q", tc.in, err, tc.msg)
			}
		})
	}
}
