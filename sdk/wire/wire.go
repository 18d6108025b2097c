// Package wire holds the JSON bodies of the chunked-uploader HTTP API (docs/api.md), the one
// definition that the server's handlers encode and the Go client (package client, which
// re-exports them under the same names) decodes. Field names are the earlier server's; a
// change here is a change of the public API.
//
// Pointer fields are null in JSON until set. Timestamps are RFC 3339 strings in UTC with whole
// seconds.
package wire

// Upload states (Status.Status, CompleteResponse.Status).
const (
	StatusPending    = "pending"
	StatusFinalizing = "finalizing"
	StatusComplete   = "complete"
	StatusFailed     = "failed"
	// StatusExpired: the upload passed expires_at before it was complete; its staged parts
	// are gone and part uploads and complete answer 410 upload_expired.
	StatusExpired = "expired"
)

// Upload phases (Status.Phase): the state, with "uploading" for pending.
const (
	PhaseUploading  = "uploading"
	PhaseFinalizing = "finalizing"
	PhaseComplete   = "complete"
	PhaseFailed     = "failed"
	PhaseExpired    = "expired"
)

// Part states (PartStatus.Status, PartToken.Status, PartResponse.Status).
const (
	PartPending  = "pending"
	PartUploaded = "uploaded"
)

// Delivery modes (Status.DeliveryMode).
const (
	// DeliveryParts: each part goes to the storage backend as soon as it is staged.
	DeliveryParts = "parts"
	// DeliveryWhole: the assembled file goes to the backend at complete.
	DeliveryWhole = "whole"
)

// Cancelled is CancelResponse.Status.
const Cancelled = "cancelled"

// Health states (HealthResponse.Status and StorageHealth.Status).
const (
	HealthOK           = "ok"
	HealthDegraded     = "degraded"
	HealthDraining     = "draining"
	StorageHealthy     = "healthy"
	StorageUnavailable = "unavailable"
)

// InitRequest is the body of POST /upload/init. Filename may carry a directory path
// ("videos/2024/movie.mp4"); ChecksumSHA256 (hex) and WebhookURL are optional.
type InitRequest struct {
	Filename       string `json:"filename"`
	TotalSize      int64  `json:"total_size"`
	ChecksumSHA256 string `json:"checksum_sha256,omitempty"`
	WebhookURL     string `json:"webhook_url,omitempty"`
}

// InitResponse is the answer to POST /upload/init: one entry in Parts per part, numbered from 0.
type InitResponse struct {
	FileID     string      `json:"file_id"`
	TotalParts int         `json:"total_parts"`
	ChunkSize  int64       `json:"chunk_size"`
	Parts      []PartToken `json:"parts"`
	ExpiresAt  string      `json:"expires_at"`
}

// PartToken is one part of an init answer: its number, the token that authorises its upload,
// and its state.
type PartToken struct {
	Part   int    `json:"part"`
	Token  string `json:"token"`
	Status string `json:"status"`
}

// PartResponse is the answer to PUT /upload/{id}/part/{n}.
type PartResponse struct {
	UploadID       string `json:"upload_id"`
	PartNumber     int    `json:"part_number"`
	Status         string `json:"status"`
	ChecksumSHA256 string `json:"checksum_sha256"`
	UploadedParts  int    `json:"uploaded_parts"`
	TotalParts     int    `json:"total_parts"`
}

// Status is the answer to GET /upload/{id}/status.
//
// Parts is present, as a non-nil slice, unless include_parts=false asked to leave it out: an
// empty file's status has "parts": [] (a nil Parts is left out of the JSON, an empty one is
// not).
type Status struct {
	FileID                    string  `json:"file_id"`
	Filename                  string  `json:"filename"`
	Path                      string  `json:"path"`
	TotalSize                 int64   `json:"total_size"`
	ChunkSize                 int64   `json:"chunk_size"`
	TotalParts                int     `json:"total_parts"`
	UploadedParts             int     `json:"uploaded_parts"`
	ProgressPercent           float64 `json:"progress_percent"`
	UploadProgressPercent     float64 `json:"upload_progress_percent"`
	Status                    string  `json:"status"`
	Phase                     string  `json:"phase"`
	FinalizingProgressPercent int     `json:"finalizing_progress_percent"`
	BytesDelivered            int64   `json:"bytes_delivered"`
	FinalPath                 *string `json:"final_path"`
	FinalizationError         *string `json:"finalization_error"`
	ChecksumSHA256            *string `json:"checksum_sha256"`
	StorageBackend            string  `json:"storage_backend"`
	CreatedAt                 string  `json:"created_at"`
	ExpiresAt                 string  `json:"expires_at"`
	// DeliveryMode is DeliveryParts or DeliveryWhole.
	DeliveryMode string `json:"delivery_mode"`
	// DeliveredParts counts the parts the storage backend holds.
	DeliveredParts int `json:"delivered_parts"`
	// DeliveryError is the last failure of the background delivery of parts (null: none).
	DeliveryError *string      `json:"delivery_error"`
	Parts         []PartStatus `json:"parts,omitzero"`
}

// PartStatus is one entry of Status.Parts. Token is set only with include_tokens=true, and
// only for pending parts of an upload that still takes parts.
type PartStatus struct {
	Part           int     `json:"part"`
	Status         string  `json:"status"`
	ChecksumSHA256 *string `json:"checksum_sha256"`
	Token          string  `json:"token,omitempty"`
	// Delivered: the storage backend holds the part.
	Delivered bool `json:"delivered"`
	// Message says why a part is pending again after it was uploaded (its staged copy was
	// damaged, or the backend lost it) and what to do.
	Message string `json:"message,omitempty"`
}

// CompleteResponse is the answer to POST /upload/{id}/complete: Status is "complete" (HTTP
// 200, FinalPath set) or "finalizing" (HTTP 202, poll the status).
type CompleteResponse struct {
	FileID                    string  `json:"file_id"`
	Filename                  string  `json:"filename"`
	TotalSize                 int64   `json:"total_size"`
	Status                    string  `json:"status"`
	Phase                     string  `json:"phase"`
	FinalPath                 *string `json:"final_path"`
	StorageBackend            string  `json:"storage_backend"`
	ChecksumSHA256            *string `json:"checksum_sha256"`
	FinalizingProgressPercent int     `json:"finalizing_progress_percent"`
}

// CancelResponse is the answer to DELETE /upload/{id}.
type CancelResponse struct {
	FileID  string `json:"file_id"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// HealthResponse is the answer to GET /health: 200 with Status "ok", 503 with "degraded" or
// "draining". Node is the server's NODE_ID, left out when it has none.
type HealthResponse struct {
	Status  string        `json:"status"`
	Node    string        `json:"node,omitempty"`
	Storage StorageHealth `json:"storage"`
}

// StorageHealth is the storage backend's part of HealthResponse. Message is null while the
// backend is healthy and names the kind of failure (never its details) when it is not.
type StorageHealth struct {
	BackendType string  `json:"backend_type"`
	Status      string  `json:"status"`
	Message     *string `json:"message"`
}

// ErrorBody is the body of every error answer: a human message, a stable code
// ("upload_not_found", ...) and the HTTP status again. The 421 wrong_node answer also names
// the node that holds the upload (OwnerNode) and the one that answered (Node); other errors
// leave them out.
type ErrorBody struct {
	Error     string `json:"error"`
	Code      string `json:"code"`
	Status    int    `json:"status"`
	OwnerNode string `json:"owner_node,omitempty"`
	Node      string `json:"node,omitempty"`
}

// Webhook event kinds (WebhookEvent.Event and the X-Webhook-Event header).
const (
	EventUploadComplete = "upload.complete"
	EventUploadFailed   = "upload.failed"
)

// WebhookEvent is the body of a webhook POST. CompletedAt, FinalPath and ChecksumSHA256 are
// set for upload.complete only, FailedAt and Error for upload.failed only; the others are left
// out. The fields are in the order of their JSON names, as the earlier encoding of the body
// had them.
type WebhookEvent struct {
	ChecksumSHA256 *string `json:"checksum_sha256,omitempty"`
	CompletedAt    string  `json:"completed_at,omitempty"`
	Error          *string `json:"error,omitempty"`
	Event          string  `json:"event"`
	EventID        string  `json:"event_id"`
	FailedAt       string  `json:"failed_at,omitempty"`
	FileID         string  `json:"file_id"`
	Filename       string  `json:"filename"`
	FinalPath      *string `json:"final_path,omitempty"`
	StorageBackend string  `json:"storage_backend"`
	TotalSize      int64   `json:"total_size"`
}
