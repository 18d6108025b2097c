package smbstore

import (
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

func TestParseConfig(t *testing.T) {
	tests := map[string]plugintest.ConfigCase[Config]{
		"Defaults": {In: sdk.Config{"SMB_USER": "u"}, Want: Config{Host: "localhost", Port: 445, User: "u", Share: "share"}},
		"All": {
			In: sdk.Config{"SMB_HOST": "nas.lan", "SMB_PORT": "4445", "SMB_USER": "u", "SMB_PASS": " p ", "SMB_DOMAIN": "WORK",
				"SMB_SHARE": "media", "SMB_PATH": `\uploads\2024\`},
			Want: Config{Host: "nas.lan", Port: 4445, User: "u", Password: " p ", Domain: "WORK", Share: "media", Path: "uploads/2024"},
		},
		"PathTrimmed":        {In: sdk.Config{"SMB_USER": "u", "SMB_PATH": "//a/b//"}, Want: Config{Host: "localhost", Port: 445, User: "u", Share: "share", Path: "a/b"}},
		"EmptySegment":       {In: sdk.Config{"SMB_USER": "u", "SMB_PATH": "a//b"}, Bad: true},
		"MountPointIgnored":  {In: sdk.Config{"SMB_USER": "u", "SMB_MOUNT_POINT": "/mnt/nas"}, Want: Config{Host: "localhost", Port: 445, User: "u", Share: "share"}},
		"NoUser":             {In: sdk.Config{}, Bad: true},
		"BadPort":            {In: sdk.Config{"SMB_USER": "u", "SMB_PORT": "70000"}, Bad: true},
		"PortNotANumber":     {In: sdk.Config{"SMB_USER": "u", "SMB_PORT": "smb"}, Bad: true},
		"PathLeavesTheShare": {In: sdk.Config{"SMB_USER": "u", "SMB_PATH": "a/../../b"}, Bad: true},
		"ShareWithSlash":     {In: sdk.Config{"SMB_USER": "u", "SMB_SHARE": "a/b"}, Bad: true},
		"HostWithSlash":      {In: sdk.Config{"SMB_USER": "u", "SMB_HOST": `\\nas`}, Bad: true},
		"UnknownSetting":     {In: sdk.Config{"SMB_USER": "u", "SMB_PASSWORD": "p"}, Bad: true},
	}
	plugintest.RunConfigCases(t, ParseConfig, tests)
}
