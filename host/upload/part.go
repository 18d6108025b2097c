package upload

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/auth"
	"github.com/chunked-uploader/chunked-uploader/host/sqlite"
	"github.com/chunked-uploader/chunked-uploader/host/staging"
)

// PartRequest is one part upload. Body is read only after every check that needs no body
// passed.
type PartRequest struct {
	UploadID      string
	Part          int
	Claims        *auth.PartClaims // verified token
	Body          io.Reader
	ContentLength int64  // -1 when unknown (chunked)
	SHA256        []byte // optional client checksum of the body
	// Interrupt, if set, makes reads of Body fail at once: a newer write of the same part
	// calls it to take the part over.
	Interrupt func()
}

// Stored is the result of a part upload.
type Stored struct {
	Upload        *host.Upload
	Part          int
	SHA256        string
	UploadedParts int

	hashed bool // the whole-file digest went past the part as it was recorded
}

// checkAccepts returns the error for an upload in a state that takes no parts.
func (s *Service) checkAccepts(u *host.Upload) error {
	switch u.Status {
	case host.StatusFinalizing:
		return host.Errorf(host.CodeUploadFinalizing, "upload %s is being delivered and takes no more parts", u.ID)
	case host.StatusComplete:
		return host.Errorf(host.CodeUploadComplete, "upload %s is already complete", u.ID)
	}
	if u.Expired(s.now()) {
		return host.Errorf(host.CodeUploadExpired, "upload %s expired at %s", u.ID, u.ExpiresAt.Format("2006-01-02T15:04:05Z"))
	}
	return nil
}

// PutPart stores one part. The token must be for this upload and part; the body must be
// exactly the part's size. The part is acknowledged only once it is on disk (fsynced) and
// recorded; an earlier version of the part is replaced atomically, unless it has the same
// bytes and is safe where it is (see commitPart).
func (s *Service) PutPart(ctx context.Context, req PartRequest) (*Stored, error) {
	c := req.Claims
	if c.UploadID != req.UploadID {
		return nil, host.Errorf(host.CodeTokenMismatch, "this token is for another upload")
	}
	u, err := s.upload(ctx, req.UploadID)
	if err != nil {
		return nil, err
	}
	if req.Part >= u.TotalParts {
		return nil, host.Errorf(host.CodePartNotFound, "part %d does not exist: upload %s has parts 0 to %d", req.Part, u.ID, u.TotalParts-1)
	}
	size := u.PartSize(req.Part)
	if c.PartNumber != req.Part || c.ExpectedSize != size {
		return nil, host.Errorf(host.CodeTokenMismatch, "this token is for part %d, not part %d", c.PartNumber, req.Part)
	}
	if err := s.checkAccepts(u); err != nil {
		return nil, err
	}
	if req.ContentLength > size {
		return nil, host.Errorf(host.CodePartTooLarge, "part %d must be %d bytes, the request says %d", req.Part, size, req.ContentLength)
	}
	if req.ContentLength >= 0 && req.ContentLength < size {
		return nil, host.Errorf(host.CodePartSizeMismatch, "part %d must be %d bytes, the request says %d", req.Part, size, req.ContentLength)
	}

	if err := s.checkStagedParts(ctx, u, req.Part); err != nil {
		return nil, err
	}
	me, release, err := s.admit(ctx, u.ID, req.Part, req.Interrupt)
	if err != nil {
		return nil, err
	}
	defer release()
	body := &trackedReader{r: req.Body}
	var staged *staging.Staged
	var handle []byte        // of the backend's object, when the part is written in place
	var inline *inlineDigest // the digest the part's bytes feed on the way, if any
	var after []byte         // its state after the part
	var st *Stored
	defer func() { inline.done(st != nil && st.hashed, after) }()
	if ip := s.openInPlace(ctx, u, req.Part, me.cut); ip != nil {
		// Into the backend's file: staging's free space does not matter (a full backend
		// disk fails the allocation with ErrNoSpace).
		handle = ip.handle
		inline = s.pumpFor(u.ID, u.Key()).claimDigest(req.Part)
		staged, err = ip.write(body, size, inline.tee())
	} else {
		if err := s.checkSpace(size); err != nil {
			return nil, err
		}
		staged, err = s.stage.Write(u.ID, req.Part, body, size)
	}
	me.reading.Store(false)
	if err != nil {
		if me.interrupted.Load() {
			return nil, host.Errorf(host.CodePartSuperseded, "a newer upload of part %d replaced this one; this one was not stored", req.Part)
		}
		return nil, s.stagingError(err, body, req.Part, size)
	}

	if req.SHA256 != nil && staged.SHA256 != hex.EncodeToString(req.SHA256) {
		staged.Abort()
		return nil, host.Errorf(host.CodeChecksumMismatch, "part %d has sha256 %s, the checksum header says %x", req.Part, staged.SHA256, req.SHA256)
	}
	// The bytes are on disk: record them whatever happens to the request now (its client
	// may be gone, or a newer write of the part cut its connection).
	ctx = context.WithoutCancel(ctx)
	var receipt []byte
	if staged.InPlace() {
		// In the backend first, outside the upload's and the part's locks (a plugin may
		// take up to PLUGIN_STALL_TIMEOUT): this request's write slot keeps other writes of
		// the part out, and MarkPartStored's handle check catches a reset meanwhile.
		if receipt, err = s.recordInBackend(ctx, u.ID, req.Part, size, staged, handle); err != nil {
			return nil, err
		}
	}
	// A resend's check of the stored version reads the part file: outside the locks too.
	intact := s.intactVersion(ctx, u, req.Part, staged)
	after = inline.stateAfter(staged)
	st, err = s.commitPart(ctx, u.ID, req.Part, staged, handle, receipt, after, intact)
	return st, err
}

// intactVersion returns the version of part n of u that staged, a resend, may leave in
// place because it has the same bytes (see inPlaceIntact), or 0.
func (s *Service) intactVersion(ctx context.Context, u *host.Upload, n int, staged *staging.Staged) int64 {
	if staged.InPlace() || u.DeliveryMode != host.DeliverParts || s.partFileReader() == nil {
		return 0
	}
	pt, err := s.db.Part(ctx, u.ID, n)
	if err != nil || pt.Status != host.PartUploaded || pt.SHA256 != staged.SHA256 || !s.inPlaceIntact(ctx, u, &pt) {
		return 0
	}
	return pt.Version
}

// commitPart puts a staged part in place and records it, unless the upload changed state
// (cancelled, delivering) while the body was streaming. A part written in place
// (staged.InPlace) under handle is recorded with the backend's receipt, and with hashAfter
// set (the whole-file digest fed as it arrived, see inlineDigest) advances the digest past
// it if it is still the next part for it (Stored.hashed tells). A resend with the
// same bytes as the stored version intact (see intactVersion; 0: none) is dropped if that
// version is still the part's.
func (s *Service) commitPart(ctx context.Context, id string, n int, staged *staging.Staged, handle, receipt, hashAfter []byte, intact int64) (*Stored, error) {
	ul := s.uploadLock(id)
	ul.RLock()
	defer ul.RUnlock()
	pl := s.partLock(id, n)
	pl.Lock()
	defer pl.Unlock()

	u, err := s.upload(ctx, id)
	if err != nil {
		staged.Abort()
		if host.ErrorCode(err) == host.CodeUploadNotFound {
			// Cancelled or expired while the body streamed: leave nothing behind.
			if rerr := s.stage.Remove(id); rerr != nil {
				s.log.Warn("removing the staged parts of a removed upload (the sweeper retries)", "upload_id", id, "error", rerr)
			}
		}
		return nil, err
	}
	if err := s.checkAccepts(u); err != nil {
		staged.Abort()
		return nil, err
	}
	inDigest := u.DeliveryMode == host.DeliverParts && n < u.HashedParts
	if inDigest || intact != 0 {
		pt, err := s.db.Part(ctx, id, n)
		if err != nil {
			staged.Abort()
			return nil, err
		}
		if inDigest && pt.SHA256 != staged.SHA256 {
			// The part is in the whole-file digest already (its staged copy may be gone):
			// only the same bytes may come again.
			staged.Abort()
			return nil, host.Errorf(host.CodePartDelivered, "part %d was already delivered to storage with sha256 %s; "+
				"other bytes cannot replace it (cancel the upload to start over)", n, pt.SHA256)
		}
		// A backend without part files cannot be read back: a part in the digest it holds
		// stands, as the digest read it.
		uncheckable := inDigest && s.partFileReader() == nil
		if pt.Status == host.PartUploaded && pt.SHA256 == staged.SHA256 && (uncheckable || intact != 0 && pt.Version == intact) {
			// The same bytes again (a retry whose first answer was lost) of a part whose
			// stored version is safe: the new copy is not kept. Kept, such copies of parts
			// written in place waited in staging for the digest, and 20 of them (parts resent
			// before part 0 came) made every further part wait a minute for a 429. A stored
			// version that is staged, or spoilt (also after the digest read it: the resend
			// then repairs the file), or whose object is being started again, is replaced as
			// any other.
			staged.Abort()
			return &Stored{Upload: u, Part: n, SHA256: staged.SHA256, UploadedParts: u.UploadedParts}, nil
		}
	}
	var mark sqlite.PartMark
	var changed *host.Upload
	if staged.InPlace() {
		if mark, changed, err = s.recordInPlace(ctx, id, n, u.PartSize(n), staged, handle, receipt, hashAfter); err != nil {
			return nil, err
		}
	} else {
		if err := staged.Commit(); err != nil {
			return nil, fmt.Errorf("putting staged part %d in place: %w", n, err)
		}
		if mark, changed, err = s.db.MarkPartUploaded(ctx, id, n, staged.SHA256, staged.CRC32C, s.now()); err != nil {
			return nil, fmt.Errorf("recording part %d: %w", n, err)
		}
	}
	if changed != nil {
		return nil, s.checkAccepts(changed)
	}
	s.log.Debug("part stored", "upload_id", id, "part", n, "sha256", staged.SHA256)
	if u.DeliveryMode == host.DeliverParts {
		s.pumpFor(id, u.Key()).kick(n)
	}
	return &Stored{Upload: u, Part: n, SHA256: staged.SHA256, UploadedParts: mark.Count, hashed: mark.Hashed}, nil
}

func (s *Service) stagingError(err error, body *trackedReader, n int, size int64) error {
	switch {
	case errors.Is(err, staging.ErrTooLong):
		return host.Errorf(host.CodePartTooLarge, "part %d must be %d bytes, more arrived", n, size)
	case errors.Is(err, staging.ErrTooShort):
		return host.Errorf(host.CodePartSizeMismatch, "part %d must be %d bytes, the body ended after %d", n, size, body.n)
	case body.err != nil && !errors.Is(body.err, io.EOF):
		return host.Wrap(err, host.CodePartSizeMismatch,
			"the request body broke off after "+itoa(body.n)+" of "+itoa(size)+" bytes; the part was not stored")
	case errors.Is(err, staging.ErrNoSpace):
		return host.Wrap(err, host.CodeInsufficientStorage, "no space left on the server to store the part; try later")
	}
	return err
}

// trackedReader remembers how much was read and the reader's own error, so a broken
// request body is told apart from a disk error.
type trackedReader struct {
	r   io.Reader
	n   int64
	err error
}

func (t *trackedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += int64(n)
	if err != nil {
		t.err = err
	}
	return n, err
}
