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

// Status is client.Status plus the fields of part-wise delivery that client.Status does not
// have yet (delivery_mode, delivered_parts, delivery_error, and per part delivered and
// message). Once sdk/client has them, Status becomes an alias of client.Status.
type Status struct {
	clientStatus
	DeliveryMode   string       `json:"delivery_mode"`
	DeliveredParts int          `json:"delivered_parts"`
	DeliveryError  *string      `json:"delivery_error"`
	Parts          []PartStatus `json:"parts"`
}

// The embedded fields are aliases so that their names (unexported) do not hide the fields
// Status.Status and PartStatus.Status; encoding/json still promotes their fields.
type (
	clientStatus     = client.Status
	clientPartStatus = client.PartStatus
)

// PartStatus is client.PartStatus plus delivered and message (see Status).
type PartStatus struct {
	clientPartStatus
	Delivered bool   `json:"delivered"`
	Message   string `json:"message"`
}

// Str is *p, or "" for nil: the Go client's optional strings (final_path, checksum_sha256,
// finalization_error) are null until set.
func Str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
