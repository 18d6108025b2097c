package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors that cross the plugin boundary. A plugin returns them (wrapped with context is
// fine: errors.Is must find them); the sdk sends them as gRPC codes and the host gets the
// same sentinel back, wrapped with the plugin's message.
var (
	ErrNotFound            = errors.New("not found")              // codes.NotFound
	ErrInvalidKey          = errors.New("invalid key")            // codes.InvalidArgument
	ErrInvalidConfig       = errors.New("invalid configuration")  // codes.InvalidArgument
	ErrSizeMismatch        = errors.New("size mismatch")          // codes.DataLoss
	ErrDigestMismatch      = errors.New("sha-256 mismatch")       // codes.DataLoss
	ErrUnavailable         = errors.New("backend unavailable")    // codes.Unavailable
	ErrInsufficientStorage = errors.New("insufficient storage")   // codes.ResourceExhausted
	ErrPermission          = errors.New("permission denied")      // codes.PermissionDenied
	ErrNotSupported        = errors.New("not supported")          // codes.Unimplemented
	ErrNotConfigured       = errors.New("backend not configured") // codes.FailedPrecondition
	// ErrStaleReceipt: CommitObject got a receipt for a part that is absent or was
	// replaced since.
	ErrStaleReceipt = errors.New("stale or missing part receipt") // codes.FailedPrecondition

	// ErrPluginExited is returned on the host side when the plugin process is gone.
	ErrPluginExited = errors.New("storage plugin exited")
)

// errorCodes maps sentinels to wire codes. Where two sentinels share a code, the reason
// string in the status message tells them apart (see toStatus).
var errorCodes = []struct {
	err  error
	code codes.Code
	tag  string
}{
	{ErrNotFound, codes.NotFound, "not_found"},
	{ErrInvalidKey, codes.InvalidArgument, "invalid_key"},
	{ErrInvalidConfig, codes.InvalidArgument, "invalid_config"},
	{ErrSizeMismatch, codes.DataLoss, "size_mismatch"},
	{ErrDigestMismatch, codes.DataLoss, "digest_mismatch"},
	{ErrUnavailable, codes.Unavailable, "unavailable"},
	{ErrInsufficientStorage, codes.ResourceExhausted, "insufficient_storage"},
	{ErrPermission, codes.PermissionDenied, "permission"},
	{ErrNotSupported, codes.Unimplemented, "not_supported"},
	{ErrNotConfigured, codes.FailedPrecondition, "not_configured"},
	{ErrStaleReceipt, codes.FailedPrecondition, "stale_receipt"},
}

// toStatus turns an implementation's error into a gRPC status error. The message is
// "<tag>: <error text>" so that sentinels sharing a code survive the trip.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return status.Error(e.code, e.tag+": "+err.Error())
		}
	}
	return status.Error(codes.Internal, err.Error())
}

// fromStatus turns a gRPC status error back into an error wrapping the matching sentinel.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Canceled:
		return contextError(context.Canceled, msg)
	case codes.DeadlineExceeded:
		return contextError(context.DeadlineExceeded, msg)
	}
	for _, e := range errorCodes {
		if e.code != st.Code() {
			continue
		}
		prefix := e.tag + ": "
		if len(msg) >= len(prefix) && msg[:len(prefix)] == prefix {
			return wrapText(e.err, msg[len(prefix):])
		}
	}
	// A plugin not written with this sdk: map by code alone.
	for _, e := range errorCodes {
		if e.code == st.Code() {
			return wrapText(e.err, msg)
		}
	}
	return errors.New(msg)
}

// contextError wraps a context error with the remote message, unless the message is just
// the error's own text.
func contextError(err error, msg string) error {
	if msg == err.Error() || msg == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, msg)
}

// wrapText wraps sentinel with the remote message, without repeating the sentinel's own
// text when the message already starts with it.
func wrapText(sentinel error, msg string) error {
	msg = strings.TrimPrefix(msg, sentinel.Error()+": ")
	if msg == sentinel.Error() || msg == "" {
		return sentinel
	}
	return fmt.Errorf("%w: %s", sentinel, msg)
}
