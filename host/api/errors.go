package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/sdk/wire"
)

// statusOf is the one place that maps error codes to HTTP statuses.
var statusOf = map[host.Code]int{
	host.CodeInvalidJSON:         http.StatusBadRequest,
	host.CodeInvalidRequest:      http.StatusBadRequest,
	host.CodeInvalidFilename:     http.StatusBadRequest,
	host.CodeInvalidSize:         http.StatusBadRequest,
	host.CodeTooManyParts:        http.StatusBadRequest,
	host.CodeInvalidWebhookURL:   http.StatusBadRequest,
	host.CodeInvalidChecksum:     http.StatusBadRequest,
	host.CodeChecksumMismatch:    http.StatusBadRequest,
	host.CodeInvalidPartNumber:   http.StatusBadRequest,
	host.CodePartSizeMismatch:    http.StatusBadRequest,
	host.CodePartsMissing:        http.StatusBadRequest,
	host.CodeMissingAPIKey:       http.StatusUnauthorized,
	host.CodeInvalidAPIKey:       http.StatusUnauthorized,
	host.CodeMissingToken:        http.StatusUnauthorized,
	host.CodeInvalidToken:        http.StatusUnauthorized,
	host.CodeTokenExpired:        http.StatusUnauthorized,
	host.CodeTokenMismatch:       http.StatusForbidden,
	host.CodeWrongNode:           http.StatusMisdirectedRequest,
	host.CodeNodeDraining:        http.StatusServiceUnavailable,
	host.CodeRouteNotFound:       http.StatusNotFound,
	host.CodeUploadNotFound:      http.StatusNotFound,
	host.CodePartNotFound:        http.StatusNotFound,
	host.CodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	host.CodeBodyTimeout:         http.StatusRequestTimeout,
	host.CodeUploadFinalizing:    http.StatusConflict,
	host.CodePartDelivered:       http.StatusConflict,
	host.CodePartSuperseded:      http.StatusConflict,
	host.CodeUploadComplete:      http.StatusConflict,
	host.CodeUploadExpired:       http.StatusGone,
	host.CodeRequestTooLarge:     http.StatusRequestEntityTooLarge,
	host.CodePartTooLarge:        http.StatusRequestEntityTooLarge,
	host.CodeUploadTooLarge:      http.StatusRequestEntityTooLarge,
	host.CodeUnsupportedMedia:    http.StatusUnsupportedMediaType,
	host.CodeHeadersTooLarge:     http.StatusRequestHeaderFieldsTooLarge,
	host.CodeInternal:            http.StatusInternalServerError,
	host.CodeDeliveryFailed:      http.StatusBadGateway,
	host.CodeBackendUnavailable:  http.StatusServiceUnavailable,
	host.CodeInsufficientStorage: http.StatusInsufficientStorage,
	host.CodeTooManyRequests:     http.StatusTooManyRequests,
}

// writeError answers with err as JSON. Errors that are not *host.Error are internal: the
// client gets only internal_error and the request id; the cause is logged here, once.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	err = s.bodyError(r, err)
	var he *host.Error
	if !errors.As(err, &he) {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			// The client went away; nobody reads the answer.
			s.log.Debug("request cancelled by the client", "request_id", requestID(r), "path", r.URL.Path)
			return
		}
		he = host.Wrap(err, host.CodeInternal, "internal error (request id "+requestID(r)+")")
	}
	status, ok := statusOf[he.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		s.log.Error("request failed", "request_id", requestID(r), "method", r.Method, "path", r.URL.Path,
			"code", he.Code, "error", err)
	} else {
		s.log.Debug("request refused", "request_id", requestID(r), "method", r.Method, "path", r.URL.Path,
			"code", he.Code, "error", he.Message)
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "2")
	}
	writeJSON(w, status, wire.ErrorBody{Error: he.Message, Code: string(he.Code), Status: status})
}
