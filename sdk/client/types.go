package client

import "github.com/chunked-uploader/chunked-uploader/sdk/wire"

// InitOptions are the optional fields of POST /upload/init.
type InitOptions struct {
	// WebhookURL, if set, gets a POST after the file was delivered.
	WebhookURL string
	// ChecksumSHA256 is the whole file's SHA-256 in hex; the server refuses to deliver a file
	// that does not match it.
	ChecksumSHA256 string
}

// The wire types are package wire's (the server encodes the same types); they are aliases, so
// client.Status and wire.Status are one type.
type (
	// InitResponse is the answer to POST /upload/init.
	InitResponse = wire.InitResponse
	// PartToken is one part of an init answer: its number, the token that authorises its
	// upload, and its state.
	PartToken = wire.PartToken
	// PartResponse is the answer to PUT /upload/{id}/part/{n}.
	PartResponse = wire.PartResponse
	// Status is the answer to GET /upload/{id}/status. Pointer fields are null in JSON until
	// set. Parts is nil only when StatusOptions.IncludeParts was false.
	Status = wire.Status
	// PartStatus is one entry of Status.Parts. Token is set only with
	// StatusOptions.IncludeTokens, and only for pending parts of an upload that still takes
	// parts.
	PartStatus = wire.PartStatus
	// CompleteResponse is the answer to POST /upload/{id}/complete: Status is "complete"
	// (HTTP 200, FinalPath set) or "finalizing" (HTTP 202, poll Status).
	CompleteResponse = wire.CompleteResponse
	// CancelResponse is the answer to DELETE /upload/{id}.
	CancelResponse = wire.CancelResponse
	// HealthResponse is the answer to GET /health. Status is "ok", "degraded" or "draining".
	HealthResponse = wire.HealthResponse
	// StorageHealth is HealthResponse.Storage.
	StorageHealth = wire.StorageHealth
	// ErrorBody is the JSON body of an error answer (APIError is what calls return).
	ErrorBody = wire.ErrorBody
	// WebhookEvent is the body of a webhook POST the server sends to an init's webhook_url.
	WebhookEvent = wire.WebhookEvent
)

// StatusOptions select the optional parts of GET /upload/{id}/status.
type StatusOptions struct {
	// IncludeParts asks for the parts list (the server's default; false sends include_parts=false).
	IncludeParts bool
	// IncludeTokens asks for the token of every pending part (include_tokens=true), so that an
	// upload can be resumed by a client that does not have the init answer. It needs IncludeParts.
	IncludeTokens bool
}

// Upload states (Status.Status).
const (
	StatusPending    = wire.StatusPending
	StatusFinalizing = wire.StatusFinalizing
	StatusComplete   = wire.StatusComplete
	StatusFailed     = wire.StatusFailed
	// StatusExpired: the upload passed its expires_at unfinished; it can no longer be resumed.
	StatusExpired = wire.StatusExpired
)

// Part states (PartStatus.Status).
const (
	PartPending  = wire.PartPending
	PartUploaded = wire.PartUploaded
)

// Delivery modes (Status.DeliveryMode).
const (
	DeliveryParts = wire.DeliveryParts
	DeliveryWhole = wire.DeliveryWhole
)

// Result describes a delivered file.
type Result struct {
	FileID   string `json:"file_id"`
	Filename string `json:"filename"`
	// FinalPath is where the backend keeps the file: an absolute path for the local backend,
	// s3://bucket/key for S3, smb://host/share/... for SMB.
	FinalPath      string `json:"final_path"`
	ChecksumSHA256 string `json:"checksum_sha256"`
	StorageBackend string `json:"storage_backend"`
	TotalSize      int64  `json:"total_size"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
