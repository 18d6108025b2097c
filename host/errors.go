package host

import (
	"errors"
	"fmt"
)

// Code is a stable error code sent to clients as "code". The HTTP status of each code is
// decided in one place, package api.
type Code string

// Error codes. docs/api.md lists when each is returned.
const (
	CodeInvalidJSON         Code = "invalid_json"
	CodeInvalidRequest      Code = "invalid_request"
	CodeInvalidFilename     Code = "invalid_filename"
	CodeInvalidSize         Code = "invalid_size"
	CodeTooManyParts        Code = "too_many_parts"
	CodeInvalidWebhookURL   Code = "invalid_webhook_url"
	CodeInvalidChecksum     Code = "invalid_checksum"
	CodeChecksumMismatch    Code = "checksum_mismatch"
	CodeInvalidPartNumber   Code = "invalid_part_number"
	CodePartSizeMismatch    Code = "part_size_mismatch"
	CodePartsMissing        Code = "parts_missing"
	CodePartDelivered       Code = "part_already_delivered"
	CodePartSuperseded      Code = "part_superseded"
	CodeMissingAPIKey       Code = "missing_api_key"
	CodeInvalidAPIKey       Code = "invalid_api_key"
	CodeMissingToken        Code = "missing_token"
	CodeInvalidToken        Code = "invalid_token"
	CodeTokenExpired        Code = "token_expired"
	CodeTokenMismatch       Code = "token_mismatch"
	CodeRouteNotFound       Code = "route_not_found"
	CodeUploadNotFound      Code = "upload_not_found"
	CodePartNotFound        Code = "part_not_found"
	CodeMethodNotAllowed    Code = "method_not_allowed"
	CodeBodyTimeout         Code = "body_timeout"
	CodeUploadFinalizing    Code = "upload_finalizing"
	CodeUploadComplete      Code = "upload_complete"
	CodeUploadExpired       Code = "upload_expired"
	CodeRequestTooLarge     Code = "request_too_large"
	CodePartTooLarge        Code = "part_too_large"
	CodeUploadTooLarge      Code = "upload_too_large"
	CodeUnsupportedMedia    Code = "unsupported_media_type"
	CodeHeadersTooLarge     Code = "headers_too_large"
	CodeTooManyRequests     Code = "too_many_requests"
	CodeInternal            Code = "internal_error"
	CodeDeliveryFailed      Code = "delivery_failed"
	CodeBackendUnavailable  Code = "backend_unavailable"
	CodeInsufficientStorage Code = "insufficient_storage"
	CodeWrongNode           Code = "wrong_node"    // the upload belongs to another node
	CodeNodeDraining        Code = "node_draining" // the node is stopping: no new uploads
)

// Error is an error a client may see: a stable code and a message safe to show. Err, if
// set, is the underlying cause; it is logged, never sent.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error carrying cause for the log and message for the client.
func Wrap(cause error, code Code, message string) *Error {
	return &Error{Code: code, Message: message, Err: cause}
}

// ErrorCode returns the code of err, or CodeInternal for errors that are not *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrNoRecord is returned by the database for a missing record (an upload or part). It is
// not sdk.ErrNotFound, which is a storage backend's missing object: the pump, for one, must
// tell "the upload is gone" from "the backend lost its unfinished object".
var ErrNoRecord = errors.New("no such record")

// ErrHandleChanged means the backend's unfinished object of an upload was started again
// (a new handle) while a part was written into the old one, which is gone with that part.
var ErrHandleChanged = errors.New("the backend's unfinished object was started again")
