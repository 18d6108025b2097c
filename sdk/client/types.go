package client

// InitOptions are the optional fields of POST /upload/init.
type InitOptions struct {
	// WebhookURL, if set, gets a POST after the file was delivered.
	WebhookURL string
	// ChecksumSHA256 is the whole file's SHA-256 in hex; the server refuses to deliver a file
	// that does not match it.
	ChecksumSHA256 string
}

// InitResponse is the answer to POST /upload/init.
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
	StatusPending    = "pending"
	StatusFinalizing = "finalizing"
	StatusComplete   = "complete"
	StatusFailed     = "failed"
)

// Part states (PartStatus.Status).
const (
	PartPending  = "pending"
	PartUploaded = "uploaded"
)

// Status is the answer to GET /upload/{id}/status. Pointer fields are null in JSON until set.
type Status struct {
	FileID                    string       `json:"file_id"`
	Filename                  string       `json:"filename"`
	Path                      string       `json:"path"`
	TotalSize                 int64        `json:"total_size"`
	ChunkSize                 int64        `json:"chunk_size"`
	TotalParts                int          `json:"total_parts"`
	UploadedParts             int          `json:"uploaded_parts"`
	ProgressPercent           float64      `json:"progress_percent"`
	UploadProgressPercent     float64      `json:"upload_progress_percent"`
	Status                    string       `json:"status"`
	Phase                     string       `json:"phase"`
	FinalizingProgressPercent int          `json:"finalizing_progress_percent"`
	BytesDelivered            int64        `json:"bytes_delivered"`
	FinalPath                 *string      `json:"final_path"`
	FinalizationError         *string      `json:"finalization_error"`
	ChecksumSHA256            *string      `json:"checksum_sha256"`
	StorageBackend            string       `json:"storage_backend"`
	CreatedAt                 string       `json:"created_at"`
	ExpiresAt                 string       `json:"expires_at"`
	Parts                     []PartStatus `json:"parts,omitempty"`
}

// PartStatus is one entry of Status.Parts. Token is set only with StatusOptions.IncludeTokens,
// and only for pending parts of an upload that still takes parts.
type PartStatus struct {
	Part           int     `json:"part"`
	Status         string  `json:"status"`
	ChecksumSHA256 *string `json:"checksum_sha256"`
	Token          string  `json:"token,omitempty"`
}

// CompleteResponse is the answer to POST /upload/{id}/complete: Status is "complete" (HTTP
// 200, FinalPath set) or "finalizing" (HTTP 202, poll Status).
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

// HealthResponse is the answer to GET /health. Status is "ok" or "degraded".
type HealthResponse struct {
	Status  string `json:"status"`
	Storage struct {
		BackendType string  `json:"backend_type"`
		Status      string  `json:"status"`
		Message     *string `json:"message"`
	} `json:"storage"`
}

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
