package upload

import "context"

// Stream is the one writer admitted for the byte stream of an upload (the tus endpoint
// writes an upload as one stream rather than part by part).
type Stream struct {
	w       *writer
	release func()
}

// Interrupted reports whether a newer writer of the stream took over.
func (st *Stream) Interrupted() bool { return st.w.interrupted.Load() }

// DoneReading tells that the stream's body was read to its end: from now on a newer
// writer waits for this one instead of cutting it.
func (st *Stream) DoneReading() { st.w.reading.Store(false) }

// Release ends the stream's admission. Call it once.
func (st *Stream) Release() { st.release() }

// AdmitStream admits the writer of upload id's byte stream as part writes are admitted
// (writers.go): one at a time per upload, a newer one interrupting the one in flight and
// waiting for it to end, and counted in MaxPartWrites and MaxPartWritesPerUpload. It
// refuses with too_many_requests beyond the budgets. interrupt must make the body reads of
// the writer fail at once.
func (s *Service) AdmitStream(ctx context.Context, id string, interrupt func()) (*Stream, error) {
	w, release, err := s.admit(ctx, id, -1, interrupt)
	if err != nil {
		return nil, err
	}
	return &Stream{w: w, release: release}, nil
}

// StagingDir is the staging directory of upload id (it may not exist yet). Files kept
// there are removed with the upload's parts (cancel, expiry, delivery) and counted in the
// staging space; names ending in ".part" or ".tmp" are reserved for the service.
func (s *Service) StagingDir(id string) string { return s.stage.UploadDir(id) }
