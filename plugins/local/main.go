// Command chunked-uploader-plugin-local is the local-disk storage plugin of
// chunked-uploader. The host starts it when STORAGE_BACKEND=local; it stores every
// delivered file under LOCAL_STORAGE_PATH.
package main

import (
	"github.com/chunked-uploader/chunked-uploader/plugins/local/internal/localstore"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

func main() {
	sdk.Serve("local", localstore.Open, sdk.WithValidator(localstore.Validate), sdk.WithStagedReads())
}
