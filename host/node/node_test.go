package node

import (
	"regexp"
	"strings"
	"testing"
)

// uuidV4 is the pattern strict validators use for a version-4 UUID.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestValid(t *testing.T) {
	for _, name := range []string{"a", "1", "node1", "eu-2", "abcdef", "0-0-0"} {
		if err := Valid(name); err != nil {
			t.Errorf("Valid(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", "abcdefg", "-a", "A", "nöde", "a b", "a_b", "a.b", "a\x00"} {
		if err := Valid(name); err == nil {
			t.Errorf("Valid(%q) = nil, want an error", name)
		}
	}
}

func TestNewIDLayout(t *testing.T) {
	tests := map[string]struct{ name, field string }{
		"one character": {"a", "000000000061"},
		"digit":         {"3", "000000000033"},
		"with dash":     {"eu-2", "000065752d32"},
		"six":           {"node01", "6e6f64653031"},
	}
	for desc, tc := range tests {
		t.Run(desc, func(t *testing.T) {
			if got := Field(tc.name); got != tc.field {
				t.Errorf("Field(%q) = %s, want %s", tc.name, got, tc.field)
			}
			seen := map[string]bool{}
			for range 1000 {
				id := NewID(tc.name)
				if !uuidV4.MatchString(id) {
					t.Fatalf("NewID(%q) = %s: not a canonical version-4 UUID", tc.name, id)
				}
				if !strings.HasSuffix(id, "-"+tc.field) {
					t.Fatalf("NewID(%q) = %s: last group is not %s", tc.name, id, tc.field)
				}
				if owner, ok := Owner(id); !ok || owner != tc.name {
					t.Fatalf("Owner(%s) = %q, %v; want %q, true", id, owner, ok, tc.name)
				}
				if seen[id] {
					t.Fatalf("NewID(%q) returned %s twice", tc.name, id)
				}
				seen[id] = true
			}
		})
	}
}

func TestNewIDWithoutNode(t *testing.T) {
	named := 0
	lastGroups := map[string]bool{}
	for range 2000 {
		id := NewID("")
		if !uuidV4.MatchString(id) {
			t.Fatalf("NewID(\"\") = %s: not a canonical version-4 UUID", id)
		}
		lastGroups[id[24:]] = true
		if _, ok := Owner(id); ok {
			named++
		}
	}
	// The last group is random: 2000 ids have (almost surely) 2000 different ones, and
	// about 1 in 110,000 names a node by chance.
	if len(lastGroups) < 1990 {
		t.Errorf("2000 ids without a node have only %d different last groups: not random", len(lastGroups))
	}
	if named > 2 {
		t.Errorf("%d of 2000 random ids name a node, want about 0.02", named)
	}
}

func TestOwnerRefuses(t *testing.T) {
	for _, id := range []string{
		"",
		"init",
		"550e8400-e29b-41d4-a716-446655440000",  // random last group
		"550e8400-e29b-41d4-a716-000000000000",  // all zero: empty name
		"550e8400-e29b-41d4-a716-000000000041",  // "A": not lowercase
		"550e8400-e29b-41d4-a716-000000610061",  // zero byte inside the name
		"550e8400-e29b-41d4-a716-00000000002d",  // "-" first
		"550E8400-E29B-41D4-A716-000000000061",  // not lowercase hex
		"550e8400-e29b-41d4-a716-0000000000061", // too long
		"550e8400e-29b-41d4-a716-00000000061",   // dashes misplaced
		"550e8400-e29b-41d4-a716-00000000006g",
	} {
		if owner, ok := Owner(id); ok {
			t.Errorf("Owner(%q) = %q, true; want false", id, owner)
		}
	}
}

func FuzzOwner(f *testing.F) {
	f.Add("550e8400-e29b-41d4-a716-000000000061")
	f.Add("550e8400-e29b-41d4-a716-446655440000")
	f.Fuzz(func(t *testing.T, id string) {
		owner, ok := Owner(id)
		if !ok {
			return
		}
		if err := Valid(owner); err != nil {
			t.Fatalf("Owner(%q) = %q, which is not valid: %v", id, owner, err)
		}
		if !strings.HasSuffix(id, "-"+Field(owner)) {
			t.Fatalf("Owner(%q) = %q, but the id does not end in its field %s", id, owner, Field(owner))
		}
	})
}
