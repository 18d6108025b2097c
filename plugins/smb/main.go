// Command chunked-uploader-plugin-smb is the SMB (Windows share, Samba, NAS) storage plugin of
// chunked-uploader. The server starts it when STORAGE_BACKEND=smb; it is not meant to be run
// by hand. See package smbstore for its settings.
package main

import (
	"github.com/chunked-uploader/chunked-uploader/plugins/smb/internal/smbstore"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

func main() {
	sdk.Serve("smb", smbstore.Open, sdk.WithValidator(smbstore.Validate))
}
