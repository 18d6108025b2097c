// Package node is the layout of upload ids that name the node which created them, so that a
// load balancer in front of several hosts can send every request about an upload to its
// node with a regular expression on the URL path, and a node can tell a misdirected
// request from an unknown upload.
//
// An upload id is a UUID in its canonical text form (36 characters, lowercase hex):
//
//	xxxxxxxx-xxxx-4xxx-Vxxx-NNNNNNNNNNNN
//
// The first four groups are random, with the version nibble 4 and the RFC 9562 variant
// (V is 8, 9, a or b), so that clients which validate ids as UUIDs (version 4 included)
// accept them. The last group, 12 hex digits (6 bytes), is the node field: the bytes of the
// node's name (NODE_ID) in ASCII, padded on the left with zero bytes. Node "a" writes
// 000000000061, node "eu-2" 000065752d32. Without a node name the last group is random too,
// which makes the id an ordinary random UUID v4 (74 random bits remain with a node name:
// enough for ids to stay unique per node).
//
// A name is 1 to 6 characters: lowercase letters, digits and '-', starting with a letter or
// a digit (MaxNameLength, Valid).
package node

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// MaxNameLength is the longest node name: the node field holds 6 bytes.
const MaxNameLength = 6

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,5}$`)

// Valid reports whether name can be a node name, with the reason when it cannot.
func Valid(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("node name %q must be 1 to %d characters: lowercase letters, digits and '-', starting with a letter or digit", name, MaxNameLength)
	}
	return nil
}

// Field is the node field (the last group of an id, 12 hex digits) of a valid name. It is
// what a load balancer matches to find the node of an upload.
func Field(name string) string {
	return fmt.Sprintf("%012s", hex.EncodeToString([]byte(name)))
}

// NewID returns a new upload id naming node name, or a random UUID v4 when name is "". name
// must be "" or Valid.
func NewID(name string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	if name != "" {
		clear(b[10:])
		copy(b[16-len(name):], name)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Owner returns the node an upload id names, and false when id does not name one: it is not a
// canonical UUID, or its last group is not a padded valid name (an id made without a node
// name, or not made by this server at all). A random id names a node by chance about once in
// 110,000 ids; a node that gets a request for such an id checks its own uploads first.
func Owner(id string) (string, bool) {
	if len(id) != 36 {
		return "", false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return "", false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	field, err := hex.DecodeString(id[24:])
	if err != nil {
		return "", false
	}
	name := strings.TrimLeft(string(field), "\x00")
	if Valid(name) != nil {
		return "", false
	}
	return name, true
}
