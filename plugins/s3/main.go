// Command chunked-uploader-plugin-s3 is the S3 storage plugin of chunked-uploader. The server
// starts it when STORAGE_BACKEND=s3; it is not meant to be run by hand. See package s3store
// for its settings.
package main

import (
	"github.com/chunked-uploader/chunked-uploader/plugins/s3/internal/s3store"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

func main() {
	sdk.Serve("s3", s3store.Open, sdk.WithValidator(s3store.Validate))
}
