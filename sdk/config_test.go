package sdk_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

var cfg = sdk.Config{
	"S3_BUCKET":  "uploads",
	"S3_PADDED":  "  padded  ",
	"S3_BLANK":   "   ",
	"S3_EMPTY":   "",
	"S3_PARTS":   "16",
	"S3_SPACED":  " 8 ",
	"S3_NEG":     "-1",
	"S3_NAN":     "many",
	"S3_HUGE":    "99999999999999999999",
	"S3_TRUE":    "TRUE",
	"S3_ONE":     "1",
	"S3_YES":     "yes",
	"S3_ON":      " on ",
	"S3_FALSE":   "false",
	"S3_ZERO":    "0",
	"S3_NO":      "No",
	"S3_OFF":     "off",
	"S3_MAYBE":   "maybe",
	"S3_DEFAULT": "x",
}

func TestConfigStrings(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		key                string
		get, def, required string
		requiredErr        bool
	}{
		"set":     {key: "S3_BUCKET", get: "uploads", def: "uploads", required: "uploads"},
		"padded":  {key: "S3_PADDED", get: "  padded  ", def: "padded", required: "padded"},
		"blank":   {key: "S3_BLANK", get: "   ", def: "fallback", requiredErr: true},
		"empty":   {key: "S3_EMPTY", get: "", def: "fallback", requiredErr: true},
		"missing": {key: "S3_MISSING", get: "", def: "fallback", requiredErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := cfg.Get(tc.key); got != tc.get {
				t.Errorf("Get = %q, want %q", got, tc.get)
			}
			if got := cfg.Default(tc.key, "fallback"); got != tc.def {
				t.Errorf("Default = %q, want %q", got, tc.def)
			}
			got, err := cfg.Required(tc.key)
			if tc.requiredErr {
				if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.key) {
					t.Errorf("Required = %q, %v; want an error wrapping ErrInvalidConfig naming %s", got, err, tc.key)
				}
				return
			}
			if err != nil || got != tc.required {
				t.Errorf("Required = %q, %v; want %q", got, err, tc.required)
			}
		})
	}
}

func TestConfigInt(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		key     string
		min     int64
		want    int64
		wantErr bool
	}{
		"set":          {key: "S3_PARTS", min: 1, want: 16},
		"spaces":       {key: "S3_SPACED", min: 1, want: 8},
		"missing":      {key: "S3_MISSING", min: 1, want: 4},
		"blank":        {key: "S3_BLANK", min: 1, want: 4},
		"at min":       {key: "S3_PARTS", min: 16, want: 16},
		"below min":    {key: "S3_PARTS", min: 17, wantErr: true},
		"negative":     {key: "S3_NEG", min: 0, wantErr: true},
		"negative ok":  {key: "S3_NEG", min: -5, want: -1},
		"not a number": {key: "S3_NAN", min: 0, wantErr: true},
		"overflow":     {key: "S3_HUGE", min: 0, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := cfg.Int(tc.key, 4, tc.min)
			if tc.wantErr {
				if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.key) {
					t.Errorf("Int = %d, %v; want an error wrapping ErrInvalidConfig naming %s", got, err, tc.key)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Int = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestConfigBool(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		key     string
		def     bool
		want    bool
		wantErr bool
	}{
		"TRUE":            {key: "S3_TRUE", want: true},
		"1":               {key: "S3_ONE", want: true},
		"yes":             {key: "S3_YES", want: true},
		"on with spaces":  {key: "S3_ON", want: true},
		"false":           {key: "S3_FALSE", def: true, want: false},
		"0":               {key: "S3_ZERO", def: true, want: false},
		"No":              {key: "S3_NO", def: true, want: false},
		"off":             {key: "S3_OFF", def: true, want: false},
		"missing, true":   {key: "S3_MISSING", def: true, want: true},
		"missing, false":  {key: "S3_MISSING", def: false, want: false},
		"blank, default":  {key: "S3_BLANK", def: true, want: true},
		"not a boolean":   {key: "S3_MAYBE", wantErr: true},
		"a number is not": {key: "S3_PARTS", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := cfg.Bool(tc.key, tc.def)
			if tc.wantErr {
				if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.key) {
					t.Errorf("Bool = %v, %v; want an error wrapping ErrInvalidConfig naming %s", got, err, tc.key)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Bool = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestConfigKeys(t *testing.T) {
	t.Parallel()
	keys := cfg.Keys()
	if len(keys) != len(cfg) || !slices.IsSorted(keys) {
		t.Errorf("Keys = %q, want all %d names sorted", keys, len(cfg))
	}
	var empty sdk.Config
	if got := empty.Keys(); len(got) != 0 {
		t.Errorf("nil Config Keys = %q", got)
	}
	if got := empty.Default("X", "d"); got != "d" {
		t.Errorf("nil Config Default = %q", got)
	}
	if _, err := empty.Required("X"); !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Errorf("nil Config Required: %v", err)
	}
}

func TestOnlyKnown(t *testing.T) {
	t.Parallel()
	c := sdk.Config{"S3_BUCKET": "b", "AWS_PROFILE": "p", "S3_BUKET": "typo"}
	err := c.OnlyKnown("S3_", "S3_BUCKET", "S3_REGION")
	if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), "S3_BUKET") || !strings.Contains(err.Error(), "S3_REGION") {
		t.Errorf("OnlyKnown with a typo = %v, want an ErrInvalidConfig naming S3_BUKET and the known names", err)
	}
	delete(c, "S3_BUKET")
	if err := c.OnlyKnown("S3_", "S3_BUCKET", "S3_REGION"); err != nil {
		t.Errorf("OnlyKnown with known names and another prefix = %v", err)
	}
}
