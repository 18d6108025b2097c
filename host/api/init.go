package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/upload"
	"github.com/chunked-uploader/chunked-uploader/sdk/wire"
)

// maxJSONBody bounds JSON request bodies.
const maxJSONBody = 64 << 10

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (s *Server) handleInit(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	req, err := decodeInit(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.WebhookURL != "" {
		if err := s.webhooks.CheckURL(req.WebhookURL); err != nil {
			s.writeError(w, r, host.Errorf(host.CodeInvalidWebhookURL, "%s", err.Error()))
			return
		}
	}
	created, err := s.svc.Init(r.Context(), *req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u := created.Upload
	resp := wire.InitResponse{
		FileID: u.ID, TotalParts: u.TotalParts, ChunkSize: u.ChunkSize,
		Parts:     make([]wire.PartToken, u.TotalParts),
		ExpiresAt: timestamp(u.ExpiresAt),
	}
	for n, tok := range created.Tokens {
		resp.Parts[n] = wire.PartToken{Part: n, Token: tok, Status: string(host.PartPending)}
	}
	writeJSON(w, http.StatusOK, resp)
}

// decodeInit reads the init body with precise errors: which field is missing or of the
// wrong type. Unknown fields are ignored, as the earlier server did.
func decodeInit(w http.ResponseWriter, r *http.Request) (*upload.InitRequest, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		// curl -d sends application/x-www-form-urlencoded unless told otherwise; the body
		// must still be JSON.
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/x-www-form-urlencoded" && !strings.HasSuffix(mt, "+json")) {
			return nil, host.Errorf(host.CodeUnsupportedMedia, "the body must be JSON (Content-Type: application/json), not %q", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, host.Errorf(host.CodeRequestTooLarge, "the request body is over %d bytes", maxJSONBody)
		}
		return nil, host.Wrap(err, host.CodeInvalidRequest, "could not read the request body")
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&fields); err != nil {
		return nil, host.Errorf(host.CodeInvalidJSON, "the body is not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, host.Errorf(host.CodeInvalidJSON, "the body has data after the JSON object")
	}
	var req upload.InitRequest
	if err := requiredString(fields, "filename", &req.Filename); err != nil {
		return nil, err
	}
	raw, ok := fields["total_size"]
	if !ok || string(raw) == "null" {
		return nil, host.Errorf(host.CodeInvalidRequest, "total_size is required (the file size in bytes)")
	}
	var num json.Number
	if c := raw[0]; (c < '0' || c > '9') && c != '-' {
		return nil, host.Errorf(host.CodeInvalidRequest, "total_size must be a whole number of bytes, not %s", truncate(raw))
	}
	if err := json.Unmarshal(raw, &num); err != nil {
		return nil, host.Errorf(host.CodeInvalidRequest, "total_size must be a whole number of bytes")
	}
	if req.TotalSize, err = num.Int64(); err != nil {
		return nil, host.Errorf(host.CodeInvalidRequest, "total_size must be a whole number of bytes, got %s", num)
	}
	if err := optionalString(fields, "checksum_sha256", &req.ChecksumSHA256); err != nil {
		return nil, err
	}
	if err := optionalString(fields, "webhook_url", &req.WebhookURL); err != nil {
		return nil, err
	}
	return &req, nil
}

func requiredString(fields map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return host.Errorf(host.CodeInvalidRequest, "%s is required", name)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return host.Errorf(host.CodeInvalidRequest, "%s must be a string", name)
	}
	return nil
}

func optionalString(fields map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return host.Errorf(host.CodeInvalidRequest, "%s must be a string", name)
	}
	return nil
}

// truncate shortens a raw JSON value for an error message.
func truncate(raw json.RawMessage) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}
