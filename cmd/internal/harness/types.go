package harness

import "github.com/chunked-uploader/chunked-uploader/sdk/client"

// The answers of the host's API, as the Go client reads them: one set of wire types on the
// Go side.
type (
	InitResponse     = client.InitResponse
	PartToken        = client.PartToken
	PartResponse     = client.PartResponse
	CompleteResponse = client.CompleteResponse
	CancelResponse   = client.CancelResponse
	HealthResponse   = client.HealthResponse
	// Result is what a client reports of a delivered file (the CLI's --json output).
	Result = client.Result
)

// Status and PartStatus are the answer of GET /upload/{id}/status and its parts.
type (
	Status     = client.Status
	PartStatus = client.PartStatus
)

// Str is *p, or "" for nil: the Go client's optional strings (final_path, checksum_sha256,
// finalization_error) are null until set.
func Str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
