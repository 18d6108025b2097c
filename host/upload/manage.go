package upload

import (
	"context"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// View is an upload as status shows it.
type View struct {
	Upload *host.Upload
	Parts  []host.Part // nil unless asked for
	// DeliveredParts counts the parts the backend holds (part-wise delivery).
	DeliveredParts int
}

// Status returns the upload, with live delivery progress, and its parts if withParts. The
// upload and its parts are read at one point in time, so their delivery figures agree.
func (s *Service) Status(ctx context.Context, id string, withParts bool) (*View, error) {
	dv, err := s.db.View(ctx, id, withParts)
	if err == host.ErrNoRecord {
		return nil, host.Errorf(host.CodeUploadNotFound, "upload %s not found", safeID(id))
	}
	if err != nil {
		return nil, err
	}
	u := dv.Upload
	if u.Status == host.StatusFinalizing && u.DeliveryMode == host.DeliverWhole {
		if j := s.job(id); j != nil {
			u.BytesDelivered = j.delivered.Load()
		}
	}
	return &View{Upload: u, Parts: dv.Parts, DeliveredParts: dv.DeliveredParts}, nil
}

// Cancel removes a pending, failed or expired upload with its staged parts. A delivered
// upload is never removed (its file stays where it was delivered), nor one being delivered.
func (s *Service) Cancel(ctx context.Context, id string) error {
	u, err := s.upload(ctx, id)
	if err != nil {
		return err
	}
	if err := cancellable(u); err != nil {
		return err
	}
	ul := s.uploadLock(id)
	ul.Lock()
	defer ul.Unlock()
	deleted, err := s.db.DeleteUpload(ctx, id, abortFor(u), host.StatusPending, host.StatusFailed, host.StatusExpired)
	if err != nil {
		return err
	}
	if !deleted {
		// Its state changed since it was read.
		if u, err = s.upload(ctx, id); err != nil {
			return err
		}
		return cancellable(u)
	}
	// Parts on their way to the backend end before its object is aborted.
	ul.Unlock()
	s.stopPump(id)
	s.wakeAborts()
	s.release(id)
	ul.Lock()
	if err := s.stage.Remove(id); err != nil {
		s.log.Warn("removing staged parts of a cancelled upload (the sweeper retries)", "upload_id", id, "error", err)
	}
	s.log.Info("upload cancelled", "upload_id", id)
	return nil
}

func cancellable(u *host.Upload) error {
	switch u.Status {
	case host.StatusFinalizing:
		return host.Errorf(host.CodeUploadFinalizing, "upload %s is being delivered and cannot be cancelled", u.ID)
	case host.StatusComplete:
		return host.Errorf(host.CodeUploadComplete, "upload %s is complete; its delivered file is not deleted", u.ID)
	}
	return nil
}
