package smbstore

import (
	"errors"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

func TestParseConfig(t *testing.T) {
	tests := map[string]struct {
		in   sdk.Config
		want Config
		bad  bool
	}{
		"Defaults": {in: sdk.Config{"SMB_USER": "u"}, want: Config{Host: "localhost", Port: 445, User: "u", Share: "share"}},
		"All": {
			in: sdk.Config{"SMB_HOST": "nas.lan", "SMB_PORT": "4445", "SMB_USER": "u", "SMB_PASS": " p ", "SMB_DOMAIN": "WORK",
				"SMB_SHARE": "media", "SMB_PATH": `\uploads\2024\`},
			want: Config{Host: "nas.lan", Port: 4445, User: "u", Password: " p ", Domain: "WORK", Share: "media", Path: "uploads/2024"},
		},
		"PathTrimmed":        {in: sdk.Config{"SMB_USER": "u", "SMB_PATH": "//a/b//"}, want: Config{Host: "localhost", Port: 445, User: "u", Share: "share", Path: "a/b"}},
		"EmptySegment":       {in: sdk.Config{"SMB_USER": "u", "SMB_PATH": "a//b"}, bad: true},
		"MountPointIgnored":  {in: sdk.Config{"SMB_USER": "u", "SMB_MOUNT_POINT": "/mnt/nas"}, want: Config{Host: "localhost", Port: 445, User: "u", Share: "share"}},
		"NoUser":             {in: sdk.Config{}, bad: true},
		"BadPort":            {in: sdk.Config{"SMB_USER": "u", "SMB_PORT": "70000"}, bad: true},
		"PortNotANumber":     {in: sdk.Config{"SMB_USER": "u", "SMB_PORT": "smb"}, bad: true},
		"PathLeavesTheShare": {in: sdk.Config{"SMB_USER": "u", "SMB_PATH": "a/../../b"}, bad: true},
		"ShareWithSlash":     {in: sdk.Config{"SMB_USER": "u", "SMB_SHARE": "a/b"}, bad: true},
		"HostWithSlash":      {in: sdk.Config{"SMB_USER": "u", "SMB_HOST": `\\nas`}, bad: true},
		"UnknownSetting":     {in: sdk.Config{"SMB_USER": "u", "SMB_PASSWORD": "p"}, bad: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := ParseConfig(tc.in)
			if tc.bad {
				if !errors.Is(err, sdk.ErrInvalidConfig) {
					t.Fatalf("got %+v, %v; want an error wrapping ErrInvalidConfig", c, err)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if c != tc.want {
				t.Errorf("got %+v, want %+v", c, tc.want)
			}
		})
	}
}
