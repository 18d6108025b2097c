// Command chunked-uploader-plugin-local is the local-disk storage plugin of
// chunked-uploader. The host starts it when STORAGE_BACKEND=local; it stores every
// delivered file under LOCAL_STORAGE_PATH.
package main

import (
	"os"

	"github.com/chunked-uploader/chunked-uploader/plugins/local/internal/localstore"
	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/buildinfo"
)

func main() {
	// The host starts the plugin without arguments; --version is for whoever runs it by hand.
	if buildinfo.PrintVersion(os.Stdout, "chunked-uploader-plugin-local", os.Args[1:]) {
		return
	}
	sdk.Serve("local", localstore.Open, sdk.WithValidator(localstore.Validate))
}
