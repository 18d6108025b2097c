package partfile_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/partfile"
)

func newHandle(t *testing.T, key string, size, partSize int64) partfile.Handle {
	t.Helper()
	spec := sdk.ObjectSpec{Size: size, PartSize: partSize, PartCount: int((size + partSize - 1) / partSize)}
	h, err := partfile.New(key, spec)
	if err != nil {
		t.Fatalf("New(%q, %+v): %v", key, spec, err)
	}
	return h
}

func TestHandleRoundTrip(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"a", "files/abc_movie.mp4", strings.Repeat("d/", 100) + "x", strings.Repeat("é", 127)} {
		h := newHandle(t, key, 10<<30+7, 50<<20)
		b := h.Marshal()
		if len(b) > sdk.MaxHandleSize {
			t.Errorf("handle of %d bytes, more than %d", len(b), sdk.MaxHandleSize)
		}
		got, err := partfile.Parse(b)
		if err != nil {
			t.Fatalf("Parse(Marshal(%+v)): %v", h, err)
		}
		if got != h {
			t.Errorf("Parse(Marshal(h)) = %+v, want %+v", got, h)
		}
	}
	a, b := newHandle(t, "k", 1, 1), newHandle(t, "k", 1, 1)
	if a.ID == b.ID || a.DataName() == b.DataName() {
		t.Errorf("two handles of one key share id %x", a.ID)
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		key  string
		spec sdk.ObjectSpec
		want error
	}{
		"bad key":        {"../x", sdk.ObjectSpec{Size: 1, PartSize: 1, PartCount: 1}, sdk.ErrInvalidKey},
		"wrong count":    {"x", sdk.ObjectSpec{Size: 10, PartSize: 3, PartCount: 3}, sdk.ErrSizeMismatch},
		"too many parts": {"x", sdk.ObjectSpec{Size: partfile.MaxParts + 1, PartSize: 1, PartCount: partfile.MaxParts + 1}, sdk.ErrNotSupported},
	}
	for name, tc := range tests {
		if _, err := partfile.New(tc.key, tc.spec); !errors.Is(err, tc.want) {
			t.Errorf("%s: New = %v, want an error wrapping %v", name, err, tc.want)
		}
	}
}

// forge encodes a handle with any fields, as a hostile host could, with a valid checksum.
func forge(version byte, key string, size, partSize int64, parts uint32) []byte {
	b := []byte{version, 1, 2, 3, 4, 5, 6, 7, 8}
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = binary.BigEndian.AppendUint64(b, uint64(partSize))
	b = binary.BigEndian.AppendUint32(b, parts)
	b = binary.BigEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	good := newHandle(t, "dir/obj", 100, 30).Marshal()
	flipped := bytes.Clone(good)
	flipped[12] ^= 1
	tests := map[string][]byte{
		"empty":          nil,
		"short":          good[:20],
		"truncated":      good[:len(good)-1],
		"extended":       append(bytes.Clone(good), 0),
		"bit flipped":    flipped,
		"version 2":      forge(2, "dir/obj", 100, 30, 4),
		"parent":         forge(1, "../../etc/passwd", 100, 30, 4),
		"inner parent":   forge(1, "dir/../../x", 100, 30, 4),
		"absolute":       forge(1, "/etc/passwd", 100, 30, 4),
		"backslash":      forge(1, `dir\..\x`, 100, 30, 4),
		"empty key":      forge(1, "", 100, 30, 4),
		"nul in key":     forge(1, "dir/a\x00b", 100, 30, 4),
		"wrong count":    forge(1, "dir/obj", 100, 30, 3),
		"zero part size": forge(1, "dir/obj", 100, 0, 0),
		"negative size":  forge(1, "dir/obj", -1, 30, 0),
		"huge":           forge(1, "dir/obj", 1<<63-1, 1<<62, 2),
		"too many parts": forge(1, "dir/obj", partfile.MaxParts+1, 1, partfile.MaxParts+1),
	}
	for name, b := range tests {
		if h, err := partfile.Parse(b); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("%s: Parse = %+v, %v; want an error wrapping ErrNotFound", name, h, err)
		}
	}
	if _, err := partfile.Parse(forge(1, "dir/obj", 100, 30, 4)); err != nil {
		t.Errorf("Parse of a well-formed forged handle: %v (the forge helper is wrong)", err)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	h := newHandle(t, "videos/2024/movie.mp4", 10, 5)
	if h.Dir() != "videos/2024" {
		t.Errorf("Dir = %q", h.Dir())
	}
	data, journal := h.DataName(), h.JournalName()
	if !strings.HasPrefix(data, ".movie.mp4.") || !strings.HasSuffix(data, ".partial") || !strings.HasSuffix(journal, ".journal") {
		t.Errorf("names %q, %q", data, journal)
	}
	if top := newHandle(t, "top.bin", 1, 1); top.Dir() != "" {
		t.Errorf("Dir of a top-level key = %q, want empty", top.Dir())
	}
	for _, tc := range []struct {
		name    string
		journal bool
	}{{data, false}, {journal, true}} {
		id, j, ok := partfile.ParseName(h.Key, tc.name)
		if !ok || id != h.ID || j != tc.journal {
			t.Errorf("ParseName(%q) = %x, %v, %v; want %x, %v, true", tc.name, id, j, ok, h.ID, tc.journal)
		}
	}
	others := []string{
		"movie.mp4",
		".movie.mp4.tmp",
		strings.ToUpper(data[:len(data)-8]) + ".partial",
		strings.Replace(data, ".movie.mp4.", ".movie.mp3.", 1),
		data + ".partial",
		data[:len(data)-9] + ".partial",
		strings.Replace(data, ".partial", ".journalx", 1),
		".movie.mp4.zzzzzzzzzzzzzzzz.partial",
	}
	for _, name := range others {
		if _, _, ok := partfile.ParseName(h.Key, name); ok {
			t.Errorf("ParseName(%q) accepted a name that is not one of key %q", name, h.Key)
		}
	}
}

func TestLongNames(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", sdk.MaxSegmentLength)
	sameStart := strings.Repeat("a", sdk.MaxSegmentLength-1) + "b"
	multi := strings.Repeat("é", sdk.MaxSegmentLength/2) // two bytes each: cut at a character boundary
	for _, key := range []string{long, "d/" + sameStart, multi, strings.Repeat("x", 229), strings.Repeat("x", 230)} {
		h := newHandle(t, key, 1, 1)
		for _, name := range []string{h.DataName(), h.JournalName()} {
			if err := sdk.ValidSegment(name); err != nil || len(name) > sdk.MaxSegmentLength {
				t.Errorf("name of key of %d bytes: %d bytes, %v", len(key), len(name), err)
			}
			if _, _, ok := partfile.ParseName(key, name); !ok {
				t.Errorf("ParseName does not recognise %q", name)
			}
		}
	}
	if partfile.Prefix(long) == partfile.Prefix(sameStart) {
		t.Errorf("two long keys that differ at their end share the prefix %q", partfile.Prefix(long))
	}
	h := newHandle(t, long, 1, 1)
	if _, _, ok := partfile.ParseName(sameStart, h.DataName()); ok {
		t.Errorf("a long key's file is taken for another's")
	}
}
