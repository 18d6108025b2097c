package host

import (
	"strings"
	"time"
)

// Status is the life-cycle state of an upload.
//
//	pending ──complete──▶ finalizing ──ok──▶ complete
//	   ▲                      │
//	   └── (parts re-sent) ── failed ◀──error
//
//	pending, failed ──past expires_at, swept──▶ expired
//
// A failed upload keeps its staged parts; completing it again retries the delivery. An
// expired upload has lost its staged parts; its record stays for a while so that clients
// get upload_expired rather than upload_not_found.
type Status string

const (
	StatusPending    Status = "pending"
	StatusFinalizing Status = "finalizing"
	StatusComplete   Status = "complete"
	StatusFailed     Status = "failed"
	StatusExpired    Status = "expired"
)

// Phase is the status as the earlier server's clients know it.
func (s Status) Phase() string {
	if s == StatusPending {
		return "uploading"
	}
	return string(s)
}

// PartStatus is the state of one part.
type PartStatus string

const (
	PartPending  PartStatus = "pending"
	PartUploaded PartStatus = "uploaded"
)

// Upload is one file being uploaded.
type Upload struct {
	ID       string
	Filename string // the name without its directory
	Path     string // the directory part of the requested filename, "" when none

	TotalSize  int64
	ChunkSize  int64
	TotalParts int

	Status         Status
	UploadedParts  int
	StorageBackend string

	// ChecksumSHA256 is the whole-file digest (hex) the client declared at init, "" if none.
	ChecksumSHA256 string
	// DeliveredSHA256 is the whole-file digest (hex) computed while delivering.
	DeliveredSHA256 string
	FinalPath       string
	// FinalizationError says why the last delivery failed.
	FinalizationError string
	BytesDelivered    int64

	WebhookURL string

	// DeliveryMode is how the file reaches the backend: DeliverWhole or DeliverParts.
	DeliveryMode DeliveryMode
	// Handle is the backend's handle of the part-wise object, nil until begun.
	Handle []byte
	// HashedParts counts the parts, from the first, that are in the whole-file SHA-256.
	HashedParts int
	// DeliveryError says why the last background delivery of a part failed ("" if it did not).
	DeliveryError string

	CreatedAt   time.Time
	UpdatedAt   time.Time
	ExpiresAt   time.Time
	CompletedAt time.Time
}

// Key is the object key the upload is delivered under: "<path>/<id>_<name>", or
// "files/<id>_<name>" when the filename had no directory.
func (u *Upload) Key() string {
	return ObjectKey(u.ID, u.Path, u.Filename)
}

// ObjectKey builds the key of Upload.Key.
func ObjectKey(id, path, name string) string {
	if path == "" {
		path = "files"
	}
	return path + "/" + id + "_" + name
}

// PartSize returns the size of part n: ChunkSize for all but the last part.
func (u *Upload) PartSize(n int) int64 {
	return PartSize(u.TotalSize, u.ChunkSize, n)
}

// PartCount returns how many parts of chunkSize a file of totalSize has.
func PartCount(totalSize, chunkSize int64) int64 {
	return (totalSize + chunkSize - 1) / chunkSize
}

// PartSize returns the size of part n of a file of totalSize cut in chunks of chunkSize.
func PartSize(totalSize, chunkSize int64, n int) int64 {
	start := int64(n) * chunkSize
	return min(chunkSize, totalSize-start)
}

// Expired reports whether the upload is past its expiry at now. Delivered uploads never expire.
func (u *Upload) Expired(now time.Time) bool {
	return u.Status == StatusExpired || (u.Status != StatusComplete && !now.Before(u.ExpiresAt))
}

// DeliveryMode says how an upload's bytes reach the storage backend.
type DeliveryMode string

const (
	// DeliverWhole streams the assembled file through the backend's Put at complete.
	DeliverWhole DeliveryMode = ""
	// DeliverParts sends each part to the backend as soon as it is staged (sdk.PartStorage);
	// complete commits what the backend holds.
	DeliverParts DeliveryMode = "parts"
)

// Part is one chunk of an upload.
type Part struct {
	Number     int
	Size       int64
	Status     PartStatus
	SHA256     string // hex, "" while pending
	UploadedAt time.Time

	// Version counts the times the part was staged; Receipt and HashAfter belong to it.
	Version int64
	// Receipt is the backend's receipt of this version of the part; nil: not delivered.
	Receipt []byte
	// HashAfter is the whole-file SHA-256 state after this part (marshalled), once hashed.
	HashAfter []byte
	// Note says why the part went back to pending ("" if it did not).
	Note string
	// CRC32C is the CRC-32C (Castagnoli) of the staged bytes, with which reads of the
	// staged copy are checked; nil for parts recorded before it was kept.
	CRC32C *uint32
}

// Delivered reports whether the backend holds this version of the part.
func (p *Part) Delivered() bool { return p.Receipt != nil }

// SplitFilename splits a requested filename into its directory and name at the last '/'.
func SplitFilename(filename string) (path, name string) {
	i := strings.LastIndexByte(filename, '/')
	if i < 0 {
		return "", filename
	}
	return filename[:i], filename[i+1:]
}

// BackendAbort is a part-wise object to abort in the backend: an empty Handle aborts every
// unfinished object under Key.
type BackendAbort struct {
	ID       int64
	UploadID string
	Key      string
	Handle   []byte
	Attempts int
}
