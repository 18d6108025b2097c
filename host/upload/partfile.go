package upload

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/sqlite"
	"github.com/chunked-uploader/chunked-uploader/host/staging"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Part files. A backend whose plugin offers them (the local backend: sdk.PartFiles) lets
// the host write a part straight into the backend's unfinished file, at the part's offset,
// instead of staging it: the part's bytes go to disk once instead of twice (staged, then
// copied by the delivery), and nothing is left to deliver. The promise is the same: the
// 200 comes after the bytes are durable (fdatasync of the part file), the backend recorded
// the part (its receipt) and SQLite recorded both.
//
// A part is written in place only when nothing else can hold a version of it: the
// database has no version of it (it is pending, without a receipt), this request holds the
// part's only write slot (admit), and the pump has no delivery of it in flight. A part sent
// again after it was acknowledged is staged as before, so that a resend that breaks off
// never spoils acknowledged bytes; the backend then replaces it through PutPart. A resend
// with the same bytes as the version in the part file, which still has its CRC-32C there,
// is dropped instead (see inPlaceIntact).
//
// A part written in place that is the next part for the whole-file digest feeds it as it
// arrives (see inlineDigest): parts sent in order are in the digest when they are
// answered. The digest reads the others (parts that came ahead of a missing one, or while
// the part before them was still arriving) back from the part file. Those reads yield to
// parts being received (see yield): a part PUT then has the CPU and the disk to itself, and
// the digest catches up between parts, once the backlog reaches Options.DigestBacklog, or
// when complete waits for it. The price is complete's wait for that backlog (about 0.9 s
// per GiB here) where the digest could have run beside parts that arrive slowly;
// DIGEST_BACKLOG_MB=0 turns yielding off. Where the digest cannot keep up with the parts
// arriving at all, a part write waits for it beyond twice that backlog (see
// waitForDigest), so complete's wait stays bounded whatever the file's size.

// PartFiler is implemented by a Backend that may take parts in its part files
// (pluginmgr.Manager).
type PartFiler interface {
	// PartFiles tells whether new parts may be written into part files now.
	PartFiles() bool
	// OffersPartFiles tells whether the running plugin offers part files now: parts
	// written into them earlier may be read back, even when PartFiles is false.
	OffersPartFiles() bool
	// OpenPartFile opens the data file of handle's object (os.O_WRONLY or os.O_RDONLY),
	// after checking that it is the file the plugin named.
	OpenPartFile(ctx context.Context, handle []byte, flag int) (*os.File, error)
	// RecordPart records a part written into the part file and returns its receipt.
	RecordPart(ctx context.Context, handle []byte, p sdk.PartInfo) ([]byte, error)
}

// partFiler returns the backend as a PartFiler when new parts may be written into its part
// files now, else nil.
func (s *Service) partFiler() PartFiler {
	if pf, ok := s.backend.(PartFiler); ok && pf.PartFiles() {
		return pf
	}
	return nil
}

// partFileReader returns the backend as a PartFiler when parts written into its part files
// can be read back now, else nil.
func (s *Service) partFileReader() PartFiler {
	if pf, ok := s.backend.(PartFiler); ok && pf.OffersPartFiles() {
		return pf
	}
	return nil
}

// partFileWait bounds how long a part write waits for the backend's object to be begun
// before it stages the part instead.
const partFileWait = 5 * time.Second

// inPlace is where a part is written in the backend's part file.
type inPlace struct {
	f      *os.File
	handle []byte
	off    int64
}

// openInPlace returns the part file to write part n of u into, or nil when the part must
// be staged (see the conditions above). The caller holds the part's write slot; cut is
// closed when a newer write of the part takes it over, which ends the waits here (the
// part is then staged, and its body reads fail at once).
func (s *Service) openInPlace(ctx context.Context, u *host.Upload, n int, cut <-chan struct{}) *inPlace {
	pf := s.partFiler()
	if pf == nil || u.DeliveryMode != host.DeliverParts {
		return nil
	}
	pt, err := s.db.Part(ctx, u.ID, n)
	if err != nil || pt.Status == host.PartUploaded || pt.Receipt != nil {
		return nil
	}
	p := s.pumpFor(u.ID, u.Key())
	handle := p.handleForPartFile(ctx, n, cut)
	if handle == nil {
		return nil
	}
	p.waitForDigest(ctx, cut)
	select {
	case <-cut:
		return nil
	default:
	}
	f, err := pf.OpenPartFile(ctx, handle, os.O_WRONLY)
	if err == nil {
		// The data file has the object's size from its begin on (sdk.PartFiles): a file of
		// another size is not this object's, whatever the plugin says.
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil && fi.Size() != u.TotalSize {
			err = fmt.Errorf("%w: %s has %d bytes, the upload %d", errNotObjectFile, f.Name(), fi.Size(), u.TotalSize)
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		// A file that is not the plugin's, or not the object's size, is logged once per
		// upload; a passing failure (the plugin restarting, the client gone) only at debug.
		if errors.Is(err, sdk.ErrNotSupported) || errors.Is(err, errNotObjectFile) {
			p.refusedOnce.Do(func() {
				s.log.Warn("the host cannot use the plugin's part file of this upload; its parts are staged instead",
					"upload_id", u.ID, "error", err)
			})
		} else {
			s.log.Debug("part file not opened; the part is staged", "upload_id", u.ID, "part", n, "error", err)
		}
		return nil
	}
	return &inPlace{f: f, handle: handle, off: int64(n) * u.ChunkSize}
}

// write writes the part's body into its part file (see staging.WriteAt) and closes it.
// With tee set, the bytes also go to tee as they arrive.
func (ip *inPlace) write(body io.Reader, size int64, tee io.Writer) (*staging.Staged, error) {
	defer ip.f.Close()
	return staging.WriteAt(ip.f, ip.off, body, size, tee)
}

// An inlineDigest is the whole-file digest fed by the write of the part it continues with,
// as the part's bytes arrive, instead of reading the part back from the part file after it
// was stored. A stream of parts sent in order then costs one more SHA-256 of each part on
// the way, beside the part's own, and no read of it, and complete has nothing left to wait
// for. The digest is then of the bytes received, as the part's own checksum is; damage to
// the part file after the write is no longer found by that read (a resend with the same
// bytes still repairs it, see inPlaceIntact).
type inlineDigest struct {
	p *pump
	n int
	h hash.Hash // nil for part 0: the part's own SHA-256 is the digest's (Staged.SHA256State)
}

// claimDigest lets the write of part n feed the whole-file digest, if part n is the next
// part to hash, is pending and no task hashes it: the pump then starts no hash of part n
// until done is called. It returns nil if not.
func (p *pump) claimDigest(n int) *inlineDigest {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.loaded || p.hashing || p.resetting != "" || p.whole || p.hashed != n || n >= len(p.parts) || p.parts[n].sha != nil {
		return nil
	}
	d := &inlineDigest{p: p, n: n}
	if p.hashState != nil || n > 0 {
		h, err := restoreHash(p.hashState)
		if err != nil {
			return nil // the pump's own read back reports it
		}
		d.h = h
	}
	p.hashing = true
	return d
}

// tee returns where the part's bytes go on their way, nil when the part's own SHA-256
// serves (or d is nil).
func (d *inlineDigest) tee() io.Writer {
	if d == nil || d.h == nil {
		return nil // an interface without a value: WriteAt tees nothing
	}
	return d.h
}

// stateAfter returns the digest's state after the part staged holds.
func (d *inlineDigest) stateAfter(staged *staging.Staged) []byte {
	if d == nil {
		return nil
	}
	if d.h == nil {
		return staged.SHA256State
	}
	after, err := marshalHash(d.h)
	if err != nil {
		return nil
	}
	return after
}

// done ends the claim: with hashed, the part's version went into the digest with state
// after (recorded in the database with the part, see sqlite.InBackend.HashAfter).
func (d *inlineDigest) done(hashed bool, after []byte) {
	if d == nil {
		return
	}
	p := d.p
	p.mu.Lock()
	p.hashing = false
	if hashed && p.hashed == d.n {
		p.advanceLocked(d.n, after)
	}
	p.notifyLocked()
	p.mu.Unlock()
	p.poke()
}

// recordInBackend records part n of upload id, written in place under handle, in the
// backend and returns its receipt. A failure says why the part was not stored: the upload
// was cancelled or finished meanwhile (its own error), the plugin is away or lost the
// object (503: send it again), or it refused the part, which sending it again would not
// change (500).
func (s *Service) recordInBackend(ctx context.Context, id string, n int, size int64, staged *staging.Staged, handle []byte) ([]byte, error) {
	pf := s.partFileReader()
	if pf == nil {
		return nil, host.Errorf(host.CodeBackendUnavailable,
			"the storage backend restarted without part files while part %d was written; send it again", n)
	}
	sum, err := hex.DecodeString(staged.SHA256)
	if err != nil {
		return nil, fmt.Errorf("part %d: %w", n, err)
	}
	receipt, err := pf.RecordPart(ctx, handle, sdk.PartInfo{Number: n, Size: size, SHA256: sum})
	if err == nil {
		return receipt, nil
	}
	u, uerr := s.upload(ctx, id)
	if uerr != nil {
		return nil, uerr // cancelled or expired while the body streamed
	} else if aerr := s.checkAccepts(u); aerr != nil {
		return nil, aerr
	}
	if errors.Is(err, sdk.ErrSizeMismatch) || errors.Is(err, sdk.ErrDigestMismatch) || errors.Is(err, sdk.ErrNotSupported) {
		// Writing it in place again would be refused again: this upload's parts are
		// staged from now on, and sent with PutPart.
		p := s.pumpFor(id, u.Key())
		p.mu.Lock()
		p.noPartFiles = true
		p.mu.Unlock()
		s.log.Warn("the plugin refused a part written into its part file; this upload's parts are staged from now on",
			"upload_id", id, "part", n, "error", err)
		return nil, host.Wrap(err, host.CodeInternal,
			"the storage backend refused part "+itoa(int64(n))+" as written into its file; it was not stored, send it again")
	}
	return nil, host.Wrap(err, host.CodeBackendUnavailable,
		"the storage backend could not record part "+itoa(int64(n))+"; it was not stored, send it again")
}

// recordInPlace records part n, written in place under handle and recorded by the backend
// with receipt, in the database, and with hashAfter set the whole-file digest's state
// after it (see sqlite.InBackend). The caller holds the upload's and the part's locks.
func (s *Service) recordInPlace(ctx context.Context, id string, n int, size int64, staged *staging.Staged, handle, receipt, hashAfter []byte) (sqlite.PartMark, *host.Upload, error) {
	mark, changed, err := s.db.MarkPartStored(ctx, id, n, staged.SHA256, staged.CRC32C,
		sqlite.InBackend{Handle: handle, Receipt: receipt, HashAfter: hashAfter}, s.now())
	switch {
	case errors.Is(err, host.ErrHandleChanged):
		return sqlite.PartMark{}, nil, host.Wrap(err, host.CodeBackendUnavailable,
			"the storage backend lost the upload's unfinished file while part "+itoa(int64(n))+" was written; send it again")
	case err != nil:
		return sqlite.PartMark{}, nil, fmt.Errorf("recording part %d: %w", n, err)
	case changed == nil:
		s.opt.Metrics.PartDelivered(size)
	}
	return mark, changed, nil
}

// handleForPartFile returns the handle of the backend's object for part n to be written
// into its part file, or nil when the part must be staged: the upload is delivered whole,
// its object is being started again, could not be begun within partFileWait, the pump
// has a delivery of part n in flight, the plugin refused a part written in place before
// (noPartFiles), or cut was closed.
func (p *pump) handleForPartFile(ctx context.Context, n int, cut <-chan struct{}) []byte {
	deadline := time.NewTimer(partFileWait)
	defer deadline.Stop()
	p.beginSoon()
	for {
		p.mu.Lock()
		ch := p.changed
		switch {
		case p.whole || p.resetting != "" || p.noPartFiles:
			p.mu.Unlock()
			return nil
		case p.loaded && p.handle != nil:
			h := p.handle
			busy := n < len(p.parts) && p.parts[n].busy
			p.mu.Unlock()
			if busy || n >= len(p.parts) {
				return nil
			}
			return h
		case p.loaded && p.failures > 0:
			p.mu.Unlock() // beginning the object fails: do not wait for the retries
			return nil
		}
		p.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return nil
		case <-p.done:
			return nil
		case <-cut:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// openPartFileSection opens the size bytes at off in the part file of handle for reading
// (with direct I/O where it can: see staging.SectionReader); done closes it.
func (s *Service) openPartFileSection(ctx context.Context, handle []byte, off, size int64) (r io.Reader, done func(), err error) {
	pf := s.partFileReader()
	if pf == nil {
		return nil, nil, errNoPartFiles
	}
	f, err := pf.OpenPartFile(ctx, handle, os.O_RDONLY)
	if err != nil {
		return nil, nil, err
	}
	return staging.SectionReader(f, off, size), func() {
		staging.DropCache(f, off, size)
		f.Close()
	}, nil
}

// partFileCRC returns the CRC-32C of the size bytes at off in the part file of handle, read
// ahead of the checksum, and how many there were (fewer where the file ends). wrap, if set,
// wraps the section's reader (the digest's yielding). An error opening the file is
// returned as it is (errNoPartFiles, sdk.ErrNotFound, ...).
func (s *Service) partFileCRC(ctx context.Context, handle []byte, off, size int64, wrap func(io.Reader) io.Reader) (uint32, int64, error) {
	r, done, err := s.openPartFileSection(ctx, handle, off, size)
	if err != nil {
		return 0, 0, err
	}
	defer done()
	if wrap != nil {
		r = wrap(r)
	}
	ra := staging.ReadAhead(r)
	defer ra.Close()
	crc := staging.CRC32C()
	n, err := io.Copy(crc, ra)
	return crc.Sum32(), n, err
}

// inPlaceIntact tells whether pt, the stored version of one of u's parts, is in the
// backend's part file where it was written and still has its CRC-32C there: it has a
// receipt and no staged copy, u's object is not being started again, and its bytes read
// back match. Anything it cannot tell is false. It reads the part (50 MiB): call it
// outside the upload's and the part's locks, and check pt's version under them after.
func (s *Service) inPlaceIntact(ctx context.Context, u *host.Upload, pt *host.Part) bool {
	if pt.Receipt == nil || pt.CRC32C == nil || u.Handle == nil || s.stage.HasPart(u.ID, pt.Number) {
		return false
	}
	if p := s.runningPump(u.ID); p != nil && p.isResetting() {
		return false
	}
	crc, n, err := s.partFileCRC(ctx, u.Handle, int64(pt.Number)*u.ChunkSize, pt.Size, nil)
	return err == nil && n == pt.Size && crc == *pt.CRC32C
}

var (
	errNoPartFiles   = errors.New("the backend no longer offers part files")
	errNotObjectFile = errors.New("not the object's data file")
)

// yield waits, before the digest reads more of a part from a part file, while parts are
// being received: the part PUTs then keep the CPU and the disk, and the digest goes on
// between them. It returns at once when complete waits (hurry), when the upload's parts
// ready for the digest reach Options.DigestBacklog bytes, when the object is to be started
// again (the reset waits for this read to end), or when ctx ends.
func (p *pump) yield(ctx context.Context) {
	if p.s.opt.DigestBacklog <= 0 {
		return
	}
	for {
		busy := p.s.writers.receiving()
		if busy == nil || p.backlog(p.s.opt.DigestBacklog) >= p.s.opt.DigestBacklog || p.isResetting() {
			return
		}
		select {
		case <-busy:
		case <-p.changedChan(): // the backlog may have grown, or a reset be due
		case <-p.hurry:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (p *pump) isResetting() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.resetting != ""
}

// digestLagUnyielding is digestLag when the digest never yields (DigestBacklog 0).
const digestLagUnyielding = 512 << 20

// digestLag is how far the digest of parts written in place may fall behind the parts
// received before a part write waits for it (waitForDigest): twice Options.DigestBacklog
// (1 GiB by default), so that it has room to catch up once it stops yielding.
func (s *Service) digestLag() int64 {
	if b := s.opt.DigestBacklog; b > 0 {
		return 2 * b
	}
	return digestLagUnyielding
}

// digestLagWait bounds that wait: a digest that does not move (its reads fail, and are
// retried) does not stop the upload.
const digestLagWait = 30 * time.Second

// waitForDigest waits, before a part is written in place, while the upload's parts ready
// for the digest exceed digestLag, until the digest has taken in one more part: where the
// digest cannot keep up with the parts arriving (on 2 cores, a client that sends faster
// than the host can read the parts back and hash them beside receiving them), the client
// is paced to the digest instead of complete waiting for gigabytes of digest at the end.
// Waiting for one part, not for the whole excess, keeps a part that comes after a late
// part 0 (whose arrival makes all the parts behind it ready at once) from waiting for
// gigabytes. Each part the digest takes in lets one waiting write go on, not all of them:
// with 4 parts in flight, all four used to go on after one part, so the lag grew by three
// parts per part digested (10 GiB with 4 in flight: complete waited 15 s after the last
// part). Parts beyond a part not yet received do not count (the digest cannot reach
// them), so the part the digest waits for never waits itself. It returns at the latest
// after digestLagWait, or when cut is closed (a newer write of the part took over), the
// pump stopped or ctx ended.
func (p *pump) waitForDigest(ctx context.Context, cut <-chan struct{}) {
	limit := p.s.digestLag()
	if p.backlog(limit+1) <= limit {
		return
	}
	deadline := time.NewTimer(digestLagWait)
	defer deadline.Stop()
	p.mu.Lock()
	p.digestWaiters++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.digestWaiters--
		p.digestPasses = min(p.digestPasses, p.digestWaiters)
		p.mu.Unlock()
	}()
	for {
		ch := p.changedChan() // before the checks: a change after them closes it
		if p.backlog(limit+1) <= limit || p.takeDigestPass() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			return
		case <-cut:
			return
		case <-p.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// takeDigestPass takes one of the parts the digest took in while writes wait for it (see
// advanceLocked), if there is one.
func (p *pump) takeDigestPass() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.digestPasses == 0 {
		return false
	}
	p.digestPasses--
	return true
}

// backlog returns the bytes of the upload's received parts that the digest can read next:
// the run of received parts from the first one not in the digest, up to the first part
// not received. It stops counting beyond atMost.
func (p *pump) backlog(atMost int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for i := p.hashed; i < len(p.parts) && p.parts[i].sha != nil && n < atMost; i++ {
		n += p.parts[i].size
	}
	return n
}

// yieldEvery is how many bytes the digest reads between two looks at whether to yield.
const yieldEvery = 4 << 20

// yieldingReader is a reader of a part file's section that yields (see pump.yield) before
// its first read and every yieldEvery bytes, and fails once ctx ended.
type yieldingReader struct {
	ctx   context.Context
	p     *pump
	r     io.Reader
	until int64 // bytes left before the next look
}

func (y *yieldingReader) Read(b []byte) (int, error) {
	if y.until <= 0 {
		y.p.yield(y.ctx)
		y.until = yieldEvery
	}
	if err := y.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := y.r.Read(b)
	y.until -= int64(n)
	return n, err
}
