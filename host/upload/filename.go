package upload

import (
	"strings"
	"unicode"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// checkComponents applies the rules of filenames beyond those of storage keys
// (sdk.ValidKey), to every component of filename (directories and the name):
//
//   - no invisible or format characters: Unicode category Cf (bidirectional controls such
//     as U+202E, zero-width characters such as U+200B and U+200D, soft hyphen, byte order
//     mark, tags), line and paragraph separators (Zl, Zp), private-use characters (Co),
//     noncharacters, and the invisible fillers U+034F, U+115F, U+1160, U+17B4, U+17B5,
//     U+180B-U+180F, U+2800, U+3164 and U+FFA0. They make a name read differently from
//     what it is. Variation selectors (emoji presentation) are allowed.
//
//   - no Windows device name as a component, with or without an extension, in any case:
//     CON, PRN, AUX, NUL, COM0-COM9, LPT0-LPT9 (also with superscript digits ¹ ² ³),
//     CONIN$, CONOUT$. An SMB share cannot hold them.
//
//   - no component starting with a space (the file name too; sdk.ValidKey sees it only
//     behind the upload id).
//
// Trailing dots and spaces, control characters, backslashes and : * ? " < > | are refused
// by sdk.ValidKey already.
func checkComponents(filename string) error {
	for _, c := range strings.Split(filename, "/") {
		for _, r := range c {
			if what := invisible(r); what != "" {
				return host.Errorf(host.CodeInvalidFilename, "filename %q contains %U, %s: names may not hide or reorder what they show", filename, r, what)
			}
		}
		if strings.HasPrefix(c, " ") {
			return host.Errorf(host.CodeInvalidFilename, "filename %q has the component %q, which starts with a space", filename, c)
		}
		if isDeviceName(c) {
			return host.Errorf(host.CodeInvalidFilename, "filename %q has the component %q, a reserved device name on Windows (CON, PRN, AUX, NUL, COM0-9, LPT0-9): SMB shares cannot hold it", filename, c)
		}
	}
	return nil
}

// invisible says what kind of invisible character r is, or "" if it is not one.
func invisible(r rune) string {
	switch {
	case r == 0x061C || r == 0x200E || r == 0x200F || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069):
		return "a bidirectional control character"
	case unicode.Is(unicode.Cf, r):
		return "an invisible format character (zero-width, soft hyphen, byte order mark, tag)"
	case unicode.In(r, unicode.Zl, unicode.Zp):
		return "a line or paragraph separator"
	case unicode.Is(unicode.Co, r):
		return "a private-use character"
	case (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE:
		return "a noncharacter"
	case r == 0x034F || r == 0x115F || r == 0x1160 || r == 0x17B4 || r == 0x17B5 || (r >= 0x180B && r <= 0x180F) ||
		r == 0x2800 || r == 0x3164 || r == 0xFFA0:
		return "an invisible filler character"
	}
	return ""
}

// isDeviceName reports whether Windows takes component c for a device: its part before the
// first dot, without trailing spaces, is a reserved name (ASCII case-insensitive).
func isDeviceName(c string) bool {
	stem, _, _ := strings.Cut(c, ".")
	stem = strings.ToUpper(strings.TrimRight(stem, " "))
	switch stem {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	for _, prefix := range []string{"COM", "LPT"} {
		if digit, ok := strings.CutPrefix(stem, prefix); ok {
			switch digit {
			case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
				return true
			}
		}
	}
	return false
}
