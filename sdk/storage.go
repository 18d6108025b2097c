package sdk

import (
	"context"
	"io"
)

// Storage is implemented by every backend. Implementations must be safe for concurrent use.
//
// Keys are slash-separated relative paths that passed ValidKey; the sdk checks them before
// an implementation sees them.
type Storage interface {
	// Put stores the content read from r under key and returns what was stored.
	//
	// r yields the whole content. Put must make the object visible only after r returned
	// io.EOF having yielded exactly size bytes; CopyExact does this bookkeeping. If r returns
	// any other error, yields a different number of bytes (ErrSizeMismatch), or ctx is
	// cancelled, Put returns an error and leaves nothing visible and no partial data behind.
	// Readers of the backend never see a partially written object. An existing object under
	// key is replaced.
	Put(ctx context.Context, key string, r io.Reader, size int64) (Object, error)

	// Stat describes the object under key, or returns an error wrapping ErrNotFound.
	Stat(ctx context.Context, key string) (Object, error)

	// Delete removes the object under key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// HealthChecker is implemented by backends that can tell whether they are usable.
// Health returns nil when the backend is reachable and writable, else an error whose
// message tells an operator what is wrong (wrong password, unknown share, ...).
type HealthChecker interface {
	Health(ctx context.Context) error
}

// Closer is implemented by backends that hold resources (connections, sessions). Close is
// called when the plugin is reconfigured or stops.
type Closer interface {
	Close() error
}

// Object describes a stored object.
type Object struct {
	Key  string
	Size int64
	// SHA256 is the digest of the stored bytes, when known (always after Put).
	SHA256 []byte
	// Location is where users find the object: a file path, s3://bucket/key,
	// smb://host/share/path. It is reported to clients as final_path.
	Location string
}

// Factory builds a configured Storage from the settings the host sent. It is called on
// every Configure call; it should validate cfg and fail with an error wrapping
// ErrInvalidConfig when a setting is missing or wrong.
type Factory func(ctx context.Context, cfg Config, log Logger) (Storage, error)
