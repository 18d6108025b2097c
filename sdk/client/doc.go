// Package client is a Go client for the chunked-uploader HTTP API (docs/api.md).
//
// It has two layers. The typed calls (Init, UploadPart, UploadPartAt, Status, Complete,
// Cancel, Health) map one to one onto the routes. The high-level calls (Upload, UploadFile,
// Resume) run a whole upload: init, parts in parallel, complete, and polling the status while
// the server delivers the file.
//
//	c, err := client.New("http://localhost:3000", os.Getenv("API_KEY"))
//	if err != nil { ... }
//	res, err := c.UploadFile(ctx, "big.bin", "videos/2024/big.bin", client.UploadOptions{
//		Progress: func(p client.Progress) { fmt.Println(p.Phase, p.BytesUploaded, p.TotalBytes) },
//	})
//	var ue *client.UploadError
//	if errors.As(err, &ue) {
//		// The upload exists on the server: c.Resume(ctx, ue.FileID, file, size, opts) continues it.
//	}
//
// Parts are read with io.NewSectionReader, one part at a time per worker, so a file is never
// held in memory. Each part is read twice: once to compute its SHA-256, which is sent as
// X-Checksum-SHA256 (a header must be known before the body is sent), then again while it is
// sent. The server checks the digest before it keeps the part, so a file that changes under
// the upload fails with a checksum_mismatch error instead of delivering mixed bytes.
//
// Retries: a request is retried with exponential backoff and full jitter on network errors and
// on the statuses 408, 429 and 5xx, honouring Retry-After; never on other 4xx statuses, which
// are returned at once as *APIError. Re-sending a part is safe: the server replaces a part
// while the upload is pending, so a part whose success answer was lost succeeds when retried.
//
// Cancelling the context stops an upload promptly and leaves it on the server, so that Resume
// can finish it later (from another process or machine: Resume asks the server for the part
// tokens and the chunk size). The client never cancels an upload on the server by itself.
package client
