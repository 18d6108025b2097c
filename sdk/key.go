package sdk

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Key limits. Every backend we ship can hold keys within them.
const (
	MaxKeyLength     = 1024 // bytes, S3's limit
	MaxSegmentLength = 255  // bytes, the common file-name limit
)

// ValidKey reports whether key is a usable object key: a relative, slash-separated path of
// valid UTF-8 with no empty, "." or ".." segment, no backslash, no control characters and
// none of the characters Windows/SMB refuse (: * ? " < > |), at most MaxKeyLength bytes
// with segments of at most MaxSegmentLength bytes. The error wraps ErrInvalidKey and says
// what is wrong.
func ValidKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if len(key) > MaxKeyLength {
		return fmt.Errorf("%w: key is %d bytes, at most %d allowed", ErrInvalidKey, len(key), MaxKeyLength)
	}
	for _, seg := range strings.Split(key, "/") {
		if err := ValidSegment(seg); err != nil {
			return err
		}
	}
	return nil
}

// ValidSegment checks one path segment (a directory or file name) by the rules of ValidKey.
func ValidSegment(seg string) error {
	switch seg {
	case "":
		return fmt.Errorf("%w: empty path segment (leading, trailing or doubled '/')", ErrInvalidKey)
	case ".", "..":
		return fmt.Errorf("%w: path segment %q is not allowed", ErrInvalidKey, seg)
	}
	if len(seg) > MaxSegmentLength {
		return fmt.Errorf("%w: path segment is %d bytes, at most %d allowed", ErrInvalidKey, len(seg), MaxSegmentLength)
	}
	if !utf8.ValidString(seg) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidKey)
	}
	for _, r := range seg {
		switch {
		case r == '\\':
			return fmt.Errorf("%w: backslash is not allowed", ErrInvalidKey)
		case strings.ContainsRune(`:*?"<>|`, r):
			return fmt.Errorf("%w: character %q is not allowed", ErrInvalidKey, r)
		case unicode.IsControl(r) || r == utf8.RuneError:
			return fmt.Errorf("%w: control character %U is not allowed", ErrInvalidKey, r)
		}
	}
	if strings.TrimRight(seg, ". ") != seg || strings.TrimLeft(seg, " ") != seg {
		return fmt.Errorf("%w: path segment %q may not start with a space or end with a dot or space", ErrInvalidKey, seg)
	}
	return nil
}
