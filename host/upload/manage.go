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

// Status returns the upload, with live delivery progress, and its parts if withParts.
func (s *Service) Status(ctx context.Context, id string, withParts bool) (*View, error) {
	u, err := s.upload(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.Status == host.StatusFinalizing && u.DeliveryMode == host.DeliverWhole {
		if j := s.job(id); j != nil {
			u.BytesDelivered = j.delivered.Load()
		}
	}
	v := &View{Upload: u}
	if withParts {
		if v.Parts, err = s.db.Parts(ctx, id); err != nil {
			return nil, err
		}
		for _, p := range v.Parts {
			if p.Delivered() {
				v.DeliveredParts++
			}
		}
	} else if u.DeliveryMode == host.DeliverParts {
		if v.DeliveredParts, err = s.db.DeliveredParts(ctx, id); err != nil {
			return nil, err
		}
	}
	return v, nil
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
