package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/sdk/wire"
)

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// uploadProgress is the share of parts uploaded, in percent with two decimals.
func uploadProgress(u *host.Upload) float64 {
	if u.TotalParts == 0 {
		return 100 // an empty file has nothing to upload
	}
	return math.Round(float64(u.UploadedParts)*10000/float64(u.TotalParts)) / 100
}

// deliveryProgress is the share of bytes delivered, in whole percent.
func deliveryProgress(u *host.Upload) int {
	switch {
	case u.Status == host.StatusComplete:
		return 100
	case u.TotalSize == 0 || u.Status != host.StatusFinalizing:
		return 0
	}
	return int(u.BytesDelivered * 100 / u.TotalSize)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	withParts, err := queryBool(r, "include_parts", true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	withTokens, err := queryBool(r, "include_tokens", false)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if withTokens && !withParts {
		s.writeError(w, r, host.Errorf(host.CodeInvalidRequest, "include_tokens=true needs the parts list: drop include_parts=false"))
		return
	}
	v, err := s.svc.Status(r.Context(), ps.ByName("id"), withParts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u := v.Upload
	resp := wire.Status{
		FileID: u.ID, Filename: u.Filename, Path: u.Path, TotalSize: u.TotalSize, ChunkSize: u.ChunkSize,
		TotalParts: u.TotalParts, UploadedParts: u.UploadedParts,
		ProgressPercent: uploadProgress(u), UploadProgressPercent: uploadProgress(u),
		Status: string(u.Status), Phase: u.Status.Phase(),
		FinalizingProgressPercent: deliveryProgress(u), BytesDelivered: u.BytesDelivered,
		FinalPath: optional(u.FinalPath), FinalizationError: optional(u.FinalizationError),
		ChecksumSHA256: optional(u.DeliveredSHA256), StorageBackend: u.StorageBackend,
		CreatedAt: timestamp(u.CreatedAt), ExpiresAt: timestamp(u.ExpiresAt),
		DeliveryMode: wire.DeliveryWhole, DeliveredParts: v.DeliveredParts, DeliveryError: optional(u.DeliveryError),
	}
	if u.DeliveryMode == host.DeliverParts {
		resp.DeliveryMode = wire.DeliveryParts
	}
	if u.Status == host.StatusComplete {
		resp.BytesDelivered = u.TotalSize
		resp.DeliveredParts = u.TotalParts
		resp.DeliveryError = nil
	}
	if withParts {
		// Fresh tokens let a client that lost its own (a crash, another machine) resume.
		// They are the same as the ones issued at init and expire with the upload.
		issue := withTokens && (u.Status == host.StatusPending || u.Status == host.StatusFailed) && !u.Expired(time.Now())
		// Never nil: an empty file has "parts": [] (wire.Status.Parts).
		parts := make([]wire.PartStatus, len(v.Parts))
		resp.Parts = parts
		for i, p := range v.Parts {
			parts[i] = wire.PartStatus{Part: p.Number, Status: string(p.Status), Message: p.Note,
				Delivered: p.Delivered() || u.Status == host.StatusComplete}
			if p.Status == host.PartUploaded {
				parts[i].ChecksumSHA256 = optional(p.SHA256)
			}
			if issue && p.Status == host.PartPending {
				if parts[i].Token, err = s.tokens.Issue(u.ID, p.Number, p.Size, u.ExpiresAt); err != nil {
					s.writeError(w, r, err)
					return
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// queryBool reads a true/false query parameter.
func queryBool(r *http.Request, name string, def bool) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, host.Errorf(host.CodeInvalidRequest, "%s must be true or false, got %q", name, v)
	}
	return b, nil
}

func (s *Server) handleComplete(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	u, err := s.svc.Complete(r.Context(), ps.ByName("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if u.Status != host.StatusComplete {
		status = http.StatusAccepted
	}
	writeJSON(w, status, wire.CompleteResponse{
		FileID: u.ID, Filename: u.Filename, TotalSize: u.TotalSize,
		Status: string(u.Status), Phase: u.Status.Phase(),
		FinalPath: optional(u.FinalPath), StorageBackend: u.StorageBackend,
		ChecksumSHA256: optional(u.DeliveredSHA256), FinalizingProgressPercent: deliveryProgress(u),
	})
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	id := ps.ByName("id")
	if err := s.svc.Cancel(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.CancelResponse{FileID: id, Status: wire.Cancelled, Message: "Upload cancelled and cleaned up"})
}

// healthTimeout bounds a health check of the backend; the plugin manager's own, shorter
// timeout (PLUGIN_HEALTH_TIMEOUT) normally ends a hung check first and restarts the plugin.
const healthTimeout = 30 * time.Second

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	resp := wire.HealthResponse{Status: wire.HealthOK, Node: s.cluster.name,
		Storage: wire.StorageHealth{BackendType: s.svc.BackendName(), Status: wire.StorageHealthy}}
	status := http.StatusOK
	if err := s.backendHealth(r.Context()); err != nil {
		status = http.StatusServiceUnavailable
		resp.Status = wire.HealthDegraded
		resp.Storage.Status = wire.StorageUnavailable
		msg := healthMessage(err)
		resp.Storage.Message = &msg
		s.log.Warn("storage backend unhealthy", "error", err)
	}
	if s.cluster.draining.Load() {
		status, resp.Status = http.StatusServiceUnavailable, wire.HealthDraining
	}
	writeJSON(w, status, resp)
}

// healthMessage is what /health (no auth) says about a failing backend: the kind of
// failure, not its details.
func healthMessage(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "the storage backend did not answer in time"
	}
	return deliveryMessage(err)
}
