package sdk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors that cross the plugin boundary, one per meaning. A plugin returns them (wrapped
// with context is fine: errors.Is must find them); Serve sends each as a gRPC status with
// its code and an ErrorInfo detail naming its reason (see ToStatus), and the host gets the
// same sentinel back, wrapped with the plugin's message.
var (
	ErrNotFound            = errors.New("not found")              // NOT_FOUND, codes.NotFound
	ErrInvalidKey          = errors.New("invalid key")            // INVALID_KEY, codes.InvalidArgument
	ErrInvalidConfig       = errors.New("invalid configuration")  // INVALID_CONFIG, codes.InvalidArgument
	ErrSizeMismatch        = errors.New("size mismatch")          // SIZE_MISMATCH, codes.DataLoss
	ErrDigestMismatch      = errors.New("sha-256 mismatch")       // DIGEST_MISMATCH, codes.DataLoss
	ErrUnavailable         = errors.New("backend unavailable")    // UNAVAILABLE, codes.Unavailable
	ErrInsufficientStorage = errors.New("insufficient storage")   // INSUFFICIENT_STORAGE, codes.ResourceExhausted
	ErrPermission          = errors.New("permission denied")      // PERMISSION, codes.PermissionDenied
	ErrNotSupported        = errors.New("not supported")          // NOT_SUPPORTED, codes.Unimplemented
	ErrNotConfigured       = errors.New("backend not configured") // NOT_CONFIGURED, codes.FailedPrecondition
	// ErrStaleReceipt: CommitObject got a receipt for a part that is absent or was
	// replaced since.
	ErrStaleReceipt = errors.New("stale or missing part receipt") // STALE_RECEIPT, codes.FailedPrecondition

	// ErrPluginExited is returned on the host side when the plugin process is gone. It
	// never crosses the wire.
	ErrPluginExited = errors.New("storage plugin exited")
)

// ErrorDomain is the domain of the google.rpc.ErrorInfo detail every sdk error status
// carries; its reason names the sentinel (see ToStatus).
const ErrorDomain = "storage.v1.chunked-uploader"

// errorKinds maps each wire sentinel to its gRPC code and its reason. tag is the text
// prefix plugins built before the reasons sent ("<tag>: <message>"); FromStatus still
// understands it.
var errorKinds = []struct {
	err    error
	code   codes.Code
	reason string
	tag    string
}{
	{ErrNotFound, codes.NotFound, "NOT_FOUND", "not_found"},
	{ErrInvalidKey, codes.InvalidArgument, "INVALID_KEY", "invalid_key"},
	{ErrInvalidConfig, codes.InvalidArgument, "INVALID_CONFIG", "invalid_config"},
	{ErrSizeMismatch, codes.DataLoss, "SIZE_MISMATCH", "size_mismatch"},
	{ErrDigestMismatch, codes.DataLoss, "DIGEST_MISMATCH", "digest_mismatch"},
	{ErrUnavailable, codes.Unavailable, "UNAVAILABLE", "unavailable"},
	{ErrInsufficientStorage, codes.ResourceExhausted, "INSUFFICIENT_STORAGE", "insufficient_storage"},
	{ErrPermission, codes.PermissionDenied, "PERMISSION", "permission"},
	{ErrNotSupported, codes.Unimplemented, "NOT_SUPPORTED", "not_supported"},
	{ErrNotConfigured, codes.FailedPrecondition, "NOT_CONFIGURED", "not_configured"},
	{ErrStaleReceipt, codes.FailedPrecondition, "STALE_RECEIPT", "stale_receipt"},
}

// WireErrors returns every sentinel that crosses the plugin boundary, by its reason on the
// wire (NOT_FOUND, STALE_RECEIPT, ...): for fault-injecting test plugins and tools that
// list them.
func WireErrors() map[string]error {
	m := make(map[string]error, len(errorKinds))
	for _, k := range errorKinds {
		m[k.reason] = k.err
	}
	return m
}

// IsWireError reports whether err wraps one of the sentinels that cross the plugin
// boundary (every Err* of this package but ErrPluginExited). A backend mapping its
// client's errors to sentinels uses it to leave errors that already carry one as they are.
func IsWireError(err error) bool {
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return true
		}
	}
	return false
}

// ToStatus turns an error of a Storage into the gRPC status error the plugin answers
// with; Serve applies it to every error, so plugin authors need it only to serve the
// protocol themselves. The status has the error's text as message and, for each sentinel
// the error wraps, a google.rpc.ErrorInfo detail {reason: the sentinel's reason, domain:
// ErrorDomain}, in the order of the list above; its code is the first sentinel's (for
// clients that read codes only). Sentinels sharing a code (ErrSizeMismatch and
// ErrDigestMismatch, say) thus stay apart, and an error wrapping two (Health's
// ErrUnavailable around ErrPermission) keeps both. Context errors become codes.Canceled
// and codes.DeadlineExceeded, an error that is already a status passes unchanged, and any
// other error is codes.Internal without detail.
func ToStatus(err error) error {
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
	var st *status.Status
	for _, k := range errorKinds {
		if !errors.Is(err, k.err) {
			continue
		}
		if st == nil {
			st = status.New(k.code, err.Error())
		}
		// WithDetails fails only if the detail cannot be marshalled, which an ErrorInfo
		// always can.
		if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: k.reason, Domain: ErrorDomain}); derr == nil {
			st = d
		}
	}
	if st == nil {
		return status.Error(codes.Internal, err.Error())
	}
	return st.Err()
}

// FromStatus is the inverse of ToStatus, used on the host side: it turns a gRPC status
// error into an error wrapping every sentinel its ErrorInfo reasons name (errors.Is finds
// each), with the plugin's message. A status without such a detail comes from a plugin
// built before the reasons, whose message starts with "<tag>: " (understood when the code
// matches), or from one not built with this sdk: it is then mapped by its code alone.
// Canceled and DeadlineExceeded wrap the context errors. Reasons this sdk does not know
// (from a newer plugin) are ignored. An error that is not a status is returned unchanged.
func FromStatus(err error) error {
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
	var kinds []error
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != ErrorDomain {
			continue
		}
		for _, k := range errorKinds {
			if k.reason == info.GetReason() && !slices.Contains(kinds, k.err) {
				kinds = append(kinds, k.err)
			}
		}
	}
	if len(kinds) > 0 {
		return wrapText(msg, kinds...)
	}
	// No reason: an older plugin's "<tag>: " prefix, else the code alone.
	for _, k := range errorKinds {
		if rest, ok := strings.CutPrefix(msg, k.tag+": "); ok && k.code == st.Code() {
			return wrapText(rest, k.err)
		}
	}
	for _, k := range errorKinds {
		if k.code == st.Code() {
			return wrapText(msg, k.err)
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

// remoteError is a plugin's error as the host sees it: the plugin's message and the
// sentinels it wrapped.
type remoteError struct {
	msg   string
	kinds []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.kinds }

// wrapText returns an error wrapping kinds with the remote message, which it starts with
// the first sentinel's text unless the message already does.
func wrapText(msg string, kinds ...error) error {
	first := kinds[0].Error()
	msg = strings.TrimPrefix(msg, first+": ")
	if msg == first || msg == "" {
		if len(kinds) == 1 {
			return kinds[0]
		}
		return &remoteError{msg: first, kinds: kinds}
	}
	return &remoteError{msg: first + ": " + msg, kinds: kinds}
}
