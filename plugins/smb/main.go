// Command chunked-uploader-plugin-smb is the SMB (Windows share, Samba, NAS) storage plugin of
// chunked-uploader. The server starts it when STORAGE_BACKEND=smb; it is not meant to be run
// by hand. See package smbstore for its settings.
package main

import (
	"os"

	"github.com/chunked-uploader/chunked-uploader/plugins/smb/internal/smbstore"
	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/buildinfo"
)

func main() {
	// The host starts the plugin without arguments; --version is for whoever runs it by hand.
	if buildinfo.PrintVersion(os.Stdout, "chunked-uploader-plugin-smb", os.Args[1:]) {
		return
	}
	sdk.Serve("smb", smbstore.Open, sdk.WithValidator(smbstore.Validate))
}
