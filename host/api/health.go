package api

import (
	"errors"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// deliveryMessage names the kind of a backend failure without its details (paths, hosts).
func deliveryMessage(err error) string {
	switch {
	case errors.Is(err, sdk.ErrPluginExited):
		return "the storage plugin is not running; it is being restarted"
	case errors.Is(err, sdk.ErrPermission):
		return "the storage backend refused access (credentials or permissions)"
	case errors.Is(err, sdk.ErrInsufficientStorage):
		return "the storage backend has no space left"
	case errors.Is(err, sdk.ErrInvalidConfig):
		return "the storage backend is misconfigured (see the server log)"
	}
	return "the storage backend is unavailable (see the server log)"
}
