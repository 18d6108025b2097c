package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

func init() { register(section{name: "ingest", order: 10, run: (*bench).ingest}) }

const (
	streamSize    = 1 << 30 // one stream of parts: 20 parts of 50 MiB and one of 24 MiB
	parallelParts = 4
	rssParts      = 8 // parts in flight for the RSS figure (DESIGN.md's target)
	ingestTarget  = 0.9
)

// ingest measures part uploads to a host with the local backend and staging on the disk
// of the work directory, each against dd conv=fdatasync of the same bytes to the same disk:
// the measurement and its baseline alternate round by round (their order rotating), and
// the file systems are synced before each run so that each starts with nothing dirty. The
// client (net/http in this process) sends the part file and dd reads it, both from the
// page cache.
func (b *bench) ingest() error {
	disk, err := b.start("ingest", nil)
	if err != nil {
		return err
	}
	tmpfs, skipped, err := b.tmpfsServer()
	if err != nil {
		return err
	}
	floor, err := b.startSink(filepath.Join(b.dir, "sink"))
	if err != nil {
		return err
	}
	defer floor.Stop(5 * time.Second) // not needed by the other sections
	if err := b.ingestParts(1, disk, tmpfs, floor, skipped); err != nil {
		return fmt.Errorf("one part: %w", err)
	}
	var elsewhere *server
	if tmpfs != nil {
		// Staging on the disk, the backend's files on the tmpfs, parts staged and then
		// delivered: a destination on another device, as a NAS or an S3 server is.
		if elsewhere, err = b.start("ingest-dest-tmpfs", map[string]string{
			"LOCAL_STORAGE_PATH": filepath.Join(b.dir, "tmpfs", "uploads"), "PLUGIN_PART_FILES": "false"}); err != nil {
			return err
		}
	}
	// The same host staging every part and delivering it afterwards, as it does for a
	// backend without part files: what writing parts in place saves.
	staged, err := b.start("ingest-staged", map[string]string{"PLUGIN_PART_FILES": "false"})
	if err != nil {
		return err
	}
	if err := b.ingestStream(disk, staged, elsewhere, skipped); err != nil {
		return fmt.Errorf("stream of parts: %w", err)
	}
	if err := b.ingestParts(parallelParts, disk, tmpfs, floor, skipped); err != nil {
		return fmt.Errorf("parallel parts: %w", err)
	}
	if err := b.ingestRSS(); err != nil {
		return fmt.Errorf("RSS: %w", err)
	}
	return nil
}

// tmpfsServer starts a host whose staging is on a tmpfs mounted for the bench (and
// unmounted at its end). Mounting needs root: without it the server is nil and skipped
// says why.
func (b *bench) tmpfsServer() (s *server, skipped string, err error) {
	mnt := filepath.Join(b.dir, "tmpfs")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return nil, "", err
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1600m,mode=0700", "chunked-uploader-bench", mnt).CombinedOutput()
	if err != nil {
		return nil, fmt.Sprintf("skipped: mounting a tmpfs needs root (%s)", strings.TrimSpace(string(out))), nil
	}
	b.onCleanup(func() { exec.Command("umount", mnt).Run() })
	// Staging and the backend's files both there: parts written in place go to the tmpfs too.
	s, err = b.start("ingest-tmpfs", map[string]string{"TEMP_STORAGE_PATH": filepath.Join(mnt, "staging"),
		"LOCAL_STORAGE_PATH": filepath.Join(mnt, "uploads-tmpfs")})
	return s, "", err
}

// trial is one timed run; what it does before and after the timed part is not counted.
type trial func() (time.Duration, error)

// alternate runs every trial once per round, in an order shuffled afresh each round (so
// that no trial always follows the same one and inherits what it leaves behind, such as
// the disk still writing back or discarding), syncing the file systems before each run,
// and returns the seconds of each trial by round. The shuffle is seeded: a run's order is
// the same each time.
func alternate(rounds int, trials ...trial) ([][]float64, error) {
	secs := make([][]float64, len(trials))
	order := rand.New(rand.NewPCG(uint64(len(trials)), uint64(rounds)))
	for range rounds {
		for _, i := range order.Perm(len(trials)) {
			syscall.Sync()
			d, err := trials[i]()
			if err != nil {
				return nil, err
			}
			secs[i] = append(secs[i], d.Seconds())
		}
	}
	return secs, nil
}

// trialSet is a set of named trials run together by alternate.
type trialSet struct {
	names  []string
	trials []trial
	secs   map[string][]float64
}

// add adds a trial under a name not used before in the set.
func (t *trialSet) add(name string, tr trial) {
	t.names = append(t.names, name)
	t.trials = append(t.trials, tr)
}

// run runs the trials alternately for rounds rounds (see alternate).
func (t *trialSet) run(rounds int) error {
	secs, err := alternate(rounds, t.trials...)
	if err != nil {
		return err
	}
	t.secs = map[string][]float64{}
	for i, name := range t.names {
		t.secs[name] = secs[i]
	}
	return nil
}

// of returns the seconds by round of the named trial; a name never added is a bug in the
// bench, and panics rather than report another trial's figures.
func (t *trialSet) of(name string) []float64 {
	secs, ok := t.secs[name]
	if !ok {
		panic("bench: no trial named " + name)
	}
	return secs
}

// addRatio reports ours against base (seconds by round for the same bytes): MB/s medians
// and the median over rounds of base/ours, the throughput ratio of that round.
func (b *bench) addRatio(name string, bytes int64, ours, base []float64, baseline string, target float64, note string) {
	ratios := make([]float64, len(ours))
	for i := range ours {
		ratios[i] = base[i] / ours[i]
	}
	sorted := append([]float64(nil), ratios...)
	sort.Float64s(sorted)
	r := result{Name: name, Value: float64(bytes) / median(ours) / 1e6, Unit: "MB/s",
		Baseline: float64(bytes) / median(base) / 1e6, Ratio: median(ratios),
		Note: fmt.Sprintf("baseline: %s; ratio: median of %d rounds (quartiles %.2f-%.2f)%s",
			baseline, len(ratios), sorted[len(sorted)/4], sorted[len(sorted)*3/4], note)}
	if target > 0 {
		met := r.Ratio >= target
		r.Target, r.Met = fmt.Sprintf(">= %.1f x baseline", target), &met
	}
	b.add(r)
}

// upload is a fresh upload of size bytes on s, removed again by done.
type upload struct {
	s    *server
	up   *initResp
	size int64
}

var uploads int

// newUpload inits an upload of size bytes on s and writes the file of its last part, if
// that is not a whole one, before any timing.
func (b *bench) newUpload(s *server, size int64) (*upload, error) {
	uploads++
	up, err := s.init(fmt.Sprintf("ingest/%d.bin", uploads), size)
	if err != nil {
		return nil, err
	}
	u := &upload{s: s, up: up, size: size}
	if _, err := b.partOf(u.size - int64(u.up.TotalParts-1)*u.up.ChunkSize); err != nil {
		return nil, err
	}
	return u, nil
}

// put sends part n from a file of the part's size (see server.putFile).
func (u *upload) put(b *bench, n int) error {
	path, err := b.partOf(min(u.up.ChunkSize, u.size-int64(n)*u.up.ChunkSize))
	if err != nil {
		return err
	}
	return u.s.putFile(u.up, n, path)
}

// partOf returns a file holding the first size bytes of the part data, the part file
// itself for a whole part; other sizes are written once, before any timing.
func (b *bench) partOf(size int64) (string, error) {
	if size == partSize {
		return b.partFile, nil
	}
	path := filepath.Join(b.dir, fmt.Sprintf("part-%d.bin", size))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	return path, os.WriteFile(path, b.part[:size], 0o644)
}

func (u *upload) done() error {
	return u.s.do("DELETE", "/upload/"+u.up.FileID, nil, 0, map[string]string{"X-API-Key": u.s.key}, nil)
}

// putTrial times the PUT of parts (all at once when parallel, else in order) of a fresh
// upload of size bytes on s. With cpu set, it appends the CPU used while the parts went.
func (b *bench) putTrial(s *server, size int64, parallelParts int, check func(*upload) error, cpu *[]cpuUse) trial {
	return func() (time.Duration, error) {
		u, err := b.newUpload(s, size)
		if err != nil {
			return 0, err
		}
		before := s.cpuNow()
		d, err := timed(func() error {
			if parallelParts > 1 {
				return parallel(u.up.TotalParts, parallelParts, func(n int) error { return u.put(b, n) })
			}
			for n := range u.up.TotalParts {
				if err := u.put(b, n); err != nil {
					return err
				}
			}
			return nil
		})
		if cpu != nil {
			*cpu = append(*cpu, s.cpuNow().sub(before))
		}
		if err == nil && check != nil {
			err = check(u)
		}
		if derr := u.done(); err == nil {
			err = derr
		}
		if err == nil {
			err = u.quiet()
		}
		return d, err
	}
}

// completeTrial times a stream of the parts of a fresh upload of size bytes on s, in
// order, and its complete up to the 200; it appends the seconds of the complete alone to
// after. The file is removed after the timing.
func (b *bench) completeTrial(s *server, size int64, after *[]float64) trial {
	return func() (time.Duration, error) {
		u, err := b.newUpload(s, size)
		if err != nil {
			return 0, err
		}
		var final string
		var completeSecs float64
		d, err := timed(func() error {
			for n := range u.up.TotalParts {
				if err := u.put(b, n); err != nil {
					return err
				}
			}
			last := time.Now()
			var err error
			final, err = s.complete(u.up.FileID)
			completeSecs = time.Since(last).Seconds()
			return err
		})
		if err != nil {
			return 0, err
		}
		*after = append(*after, completeSecs)
		if final == "" {
			return 0, fmt.Errorf("complete of %s gave no final_path", u.up.FileID)
		}
		return d, os.Remove(final)
	}
}

// quiet waits, untimed, until the host removed the deleted upload's staging directory and
// the backend removed its unfinished object (the parts written in place), so that no
// delivery or abort of it runs into the next trial.
func (u *upload) quiet() error {
	dir := filepath.Join(u.s.dir, "staging", u.up.FileID)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		_, err := os.Stat(dir)
		left, werr := u.inBackend()
		if werr != nil {
			return werr
		}
		if errors.Is(err, fs.ErrNotExist) && !left {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("staging or unfinished object of deleted upload %s still there a minute later", u.up.FileID)
		}
	}
}

// inBackend tells whether a file named after the upload is left in the local backend's
// directory: the local plugin names an unfinished object's files after its key, which
// holds the file ID.
func (u *upload) inBackend() (bool, error) {
	found := false
	err := filepath.WalkDir(u.s.backendDir, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil && path == u.s.backendDir && errors.Is(err, fs.ErrNotExist):
			return filepath.SkipAll // nothing stored yet
		case err != nil && path == u.s.backendDir:
			return err
		case err != nil:
			return nil // removed while walking
		case strings.Contains(d.Name(), u.up.FileID):
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("looking for the unfinished object of upload %s: %w", u.up.FileID, err)
	}
	return found, nil
}

// ddTrial times dd conv=fdatasync (with any further operands) of each of files to a fresh
// file in the work directory, width at a time, in order.
//
// In sequence (width 1) it times each dd alone and drops its output's pages from the page
// cache between them, off the clock, as the host drops a part's once it is synced (with
// direct writes it has none). Without that a run of buffered dd slows down by itself: on
// this project's VMs, once 300 MiB or so of its outputs are cached, each further 50 MiB
// takes 150 to 200 ms instead of 45 (21 in sequence: 3.1 to 3.3 s, against 1.3 to 1.7 s
// with each output removed after it). Dropping 50 MiB of pages takes 2 ms, 4 % of the dd,
// which is why it is not timed.
func (b *bench) ddTrial(files []string, width int, operands ...string) trial {
	return func() (time.Duration, error) {
		outs := make([]string, len(files))
		for i := range outs {
			outs[i] = filepath.Join(b.dir, fmt.Sprintf("dd-%d.out", i))
		}
		defer func() {
			for _, o := range outs {
				os.Remove(o)
			}
		}()
		if width > 1 {
			return timed(func() error {
				return parallel(len(files), width, func(i int) error { return dd(files[i], outs[i], operands...) })
			})
		}
		var total time.Duration
		for i, f := range files {
			d, err := timed(func() error { return dd(f, outs[i], operands...) })
			if err != nil {
				return 0, err
			}
			total += d
			if err := dropPages(outs[i]); err != nil {
				return 0, err
			}
		}
		return total, nil
	}
}

// ddDeliverTrial does with dd the disk work of a stream of files through the host with the
// local backend on the same disk: each file is written durably (the staged part) while the
// one before it is copied with direct I/O into one file at its offset and synced (its
// delivery). The time ends when the last file is written, as a stream ends at its last
// part's answer, not when the last copy is done.
func (b *bench) ddDeliverTrial(files []string) trial {
	return func() (time.Duration, error) {
		final := filepath.Join(b.dir, "dd-final.out")
		staged := func(i int) string { return filepath.Join(b.dir, fmt.Sprintf("dd-staged-%d.out", i)) }
		defer func() {
			os.Remove(final)
			for i := range files {
				os.Remove(staged(i))
			}
		}()
		var copying chan error
		var offset int64
		d, err := timed(func() error {
			for i, f := range files {
				// Direct writes, as the host stages a part: buffered ones would fill the
				// page cache and slow down by themselves (see ddTrial).
				if err := dd(f, staged(i), "oflag=direct"); err != nil {
					return err
				}
				if copying != nil {
					if err := <-copying; err != nil {
						return err
					}
				}
				copying = make(chan error, 1)
				go func(src string, seek int64) { copying <- ddAt(src, final, seek) }(staged(i), offset)
				fi, err := os.Stat(f)
				if err != nil {
					return err
				}
				offset += fi.Size()
			}
			return nil
		})
		if copying != nil {
			if cerr := <-copying; err == nil {
				err = cerr
			}
		}
		return d, err
	}
}

// ddAt copies src into out at byte offset seek (a multiple of 1 MiB) with direct I/O on
// both sides and fdatasync, leaving the rest of out as it is.
func ddAt(src, out string, seek int64) error {
	cmd := exec.Command("dd", "if="+src, "of="+out, "bs=1M", fmt.Sprintf("seek=%d", seek>>20),
		"iflag=direct", "oflag=direct", "conv=fdatasync,notrunc")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dd: %v %s", err, msg)
	}
	return nil
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// ingestStream: one stream of parts for 1 GiB vs dd of each part in sequence. It also
// reports how much of the staged parts the page cache holds right after the last part.
func (b *bench) ingestStream(disk, staged, elsewhere *server, skipped string) error {
	files := repeat(b.partFile, streamSize/partSize)
	if tail := streamSize % partSize; tail > 0 {
		tailFile, err := b.partOf(int64(tail))
		if err != nil {
			return err
		}
		files = append(files, tailFile)
	}
	cached, stagedBytes := int64(-1), int64(0)
	check := func(u *upload) error {
		if cached >= 0 {
			return nil
		}
		// Part-wise delivery removes a part's staged copy once it is delivered and in the
		// file's digest: only the parts still staged are looked at.
		var paths []string
		for n := range u.up.TotalParts {
			p := filepath.Join(staged.dir, "staging", u.up.FileID, fmt.Sprintf("%06d.part", n))
			if fi, err := os.Stat(p); err == nil {
				paths = append(paths, p)
				stagedBytes += fi.Size()
			}
		}
		var err error
		cached, err = residentBytes(paths)
		return err
	}
	rounds := max(3, b.rounds/3)
	var diskCPU, stagedCPU, elsewhereCPU []cpuUse
	var diskComplete, stagedComplete []float64
	var t trialSet
	t.add("disk", b.putTrial(disk, streamSize, 1, nil, &diskCPU))
	t.add("dd", b.ddTrial(files, 1))
	// dd with direct writes too, one synchronous 1 MiB write at a time: the caching state of
	// the host's own writes, beside the buffered dd of the target.
	t.add("dd-direct", b.ddTrial(files, 1, "oflag=direct"))
	t.add("dd-deliver", b.ddDeliverTrial(files))
	t.add("staged", b.putTrial(staged, streamSize, 1, check, &stagedCPU))
	t.add("complete", b.completeTrial(disk, streamSize, &diskComplete))
	t.add("staged-complete", b.completeTrial(staged, streamSize, &stagedComplete))
	if elsewhere != nil {
		t.add("elsewhere", b.putTrial(elsewhere, streamSize, 1, nil, &elsewhereCPU))
	}
	if err := t.run(rounds); err != nil {
		return err
	}
	dd := t.of("dd")
	ddName := fmt.Sprintf("%d dd conv=fdatasync of the same parts in sequence, each output's pages dropped after it (off the clock)", len(files))
	name := fmt.Sprintf("ingest, one stream of %d parts (1 GiB), delivered to another device", len(files))
	if elsewhere == nil {
		b.add(result{Name: name, Note: skipped})
	} else {
		b.addRatio(name, streamSize, t.of("elsewhere"), dd, ddName, 0,
			"; staging on the disk, the local backend's files on a tmpfs (as a NAS or an S3 server is another device): delivery costs CPU, not this disk")
	}
	b.addRatio(fmt.Sprintf("ingest, one stream of %d parts (1 GiB)", len(files)), streamSize, t.of("disk"), dd, ddName, ingestTarget,
		"; the local backend on the same disk, each part written in place into its unfinished file (part files): each part, sent in order, also feeds the whole-file digest as it arrives (a second SHA-256 of every byte on the way)")
	b.addRatio(fmt.Sprintf("ingest, one stream of %d parts (1 GiB), against dd with direct writes", len(files)), streamSize, t.of("disk"), t.of("dd-direct"),
		fmt.Sprintf("%d dd oflag=direct conv=fdatasync of the same parts in sequence", len(files)), 0, "")
	b.addRatio(fmt.Sprintf("ingest, one stream of %d parts (1 GiB), staged and delivered", len(files)), streamSize, t.of("staged"), dd, ddName, 0,
		"; PLUGIN_PART_FILES=false, as for a backend without part files: each part is staged, then delivered to the local backend on the same disk while the next arrives (a second write and a read of every byte)")
	b.addRatio(fmt.Sprintf("ingest, one stream of %d parts (1 GiB), staged and delivered, against the same disk work", len(files)), streamSize, t.of("staged"), t.of("dd-deliver"),
		"dd of each part as above, while dd copies the part before it (iflag=direct oflag=direct conv=fdatasync) into one file at its offset, as delivery does", 0, "")
	b.addRatio(fmt.Sprintf("ingest, one stream of %d parts (1 GiB) and its complete", len(files)), streamSize, t.of("complete"), dd, ddName, 0,
		fmt.Sprintf("; the time up to complete's 200 with final_path, which waits for the whole-file digest; complete took %.2f s after the last part (median); staged and delivered (PLUGIN_PART_FILES=false): %.2f x, complete %.2f s",
			median(diskComplete), median(dd)/median(t.of("staged-complete")), median(stagedComplete)))
	shaSecs := b.sha256Seconds()
	b.addCPU("ingest, CPU of the stream", streamSize, diskCPU, median(dd), shaSecs)
	b.addCPU("ingest, CPU of the stream, staged and delivered", streamSize, stagedCPU, median(dd), shaSecs)
	if elsewhere != nil {
		b.addCPU("ingest, CPU of the stream delivered to another device", streamSize, elsewhereCPU, median(dd), shaSecs)
	}
	if cached >= 0 {
		b.add(result{Name: "staged parts in the page cache after the stream", Value: mib(cached), Unit: "MiB",
			Note: fmt.Sprintf("of the %.0f MiB still staged right after the last part (mincore; delivered parts are removed)", mib(stagedBytes))})
	}
	return nil
}

// ingestParts: width parts PUT at once (one part for width 1) vs width dd at once of the
// same part, the same PUTs with staging on tmpfs, the same parts sent to the sink (the
// receive-and-hash floor), and the PUTs and the sink again from a client whose sockets use
// cubic instead of the machine's congestion control (see congestionClient).
func (b *bench) ingestParts(width int, disk, tmpfs *server, floor *sink, skipped string) error {
	what, put := "one part", "ingest, one 50 MiB part PUT"
	if width > 1 {
		what = fmt.Sprintf("%d parts in parallel", width)
		put = "ingest, " + what
	}
	size := int64(width) * partSize
	var t trialSet
	t.add("disk", b.putTrial(disk, size, width, nil, nil))
	t.add("dd", b.ddTrial(repeat(b.partFile, width), width))
	t.add("floor", b.sinkTrial(floor, width))
	if tmpfs != nil {
		t.add("tmpfs", b.putTrial(tmpfs, size, width, nil, nil))
	}
	sysCC := systemCongestion()
	cubic, cubicErr := congestionClient("cubic")
	if cubicErr == nil && sysCC == "cubic" {
		cubicErr = errors.New("the machine's congestion control is cubic already")
	}
	if cubicErr == nil {
		defer cubic.CloseIdleConnections()
		t.add("disk-cubic", b.putTrial(disk.via(cubic), size, width, nil, nil))
		t.add("floor-cubic", b.sinkTrial(floor.via(cubic), width))
	}
	if err := t.run(b.rounds); err != nil {
		return err
	}
	baseline := "dd bs=1M conv=fdatasync of the part"
	if width > 1 {
		baseline = fmt.Sprintf("%d dd conv=fdatasync at once", width)
	}
	times := fmt.Sprintf("; the client's congestion control: %s (the machine's); on disk: %.0f ms, the floor: %.0f ms",
		sysCC, median(t.of("disk"))*1000, median(t.of("floor"))*1000)
	if tmpfs != nil {
		times += fmt.Sprintf(", staging on tmpfs: %.0f ms", median(t.of("tmpfs"))*1000)
	}
	b.addRatio(put, size, t.of("disk"), t.of("dd"), baseline, ingestTarget, times)
	b.addRatio("ingest, "+what+" to the receive-and-hash floor", size, t.of("floor"), t.of("dd"), "the same dd to disk", 0,
		"; the floor: a bare net/http server in its own process that reads the body in 128 KiB blocks and SHA-256es it on a second goroutine, nothing else (no disk, database, auth or CRC), sent the same file by the same client over the same loopback")
	b.addRatio("ingest, "+what+" PUT against the receive-and-hash floor", size, t.of("disk"), t.of("floor"), "the same parts sent to the floor", 0,
		"; what the host adds to the least a server that reads and hashes every byte does (direct writes, the database, auth, the CRC, the plugin's record)")
	cubicNames := []string{"ingest, " + what + " PUT, the client on cubic", "ingest, " + what + " to the receive-and-hash floor, the client on cubic",
		"ingest, " + what + " PUT against the receive-and-hash floor, the client on cubic"}
	if cubicErr != nil {
		for _, n := range cubicNames {
			b.add(result{Name: n, Note: "skipped: " + cubicErr.Error()})
		}
	} else {
		b.addRatio(cubicNames[0], size, t.of("disk-cubic"), t.of("dd"), "the same dd to disk", 0,
			fmt.Sprintf("; a diagnosis, not the target's measurement: as above with the client's sockets on cubic instead of %s (see congestionClient); on disk: %.0f ms, the floor: %.0f ms",
				sysCC, median(t.of("disk-cubic"))*1000, median(t.of("floor-cubic"))*1000))
		b.addRatio(cubicNames[1], size, t.of("floor-cubic"), t.of("dd"), "the same dd to disk", 0, "")
		b.addRatio(cubicNames[2], size, t.of("disk-cubic"), t.of("floor-cubic"), "the same parts sent to the floor from the same client", 0, "")
	}
	name := "ingest, one part PUT, staging on tmpfs"
	if width > 1 {
		name = "ingest, " + what + ", staging on tmpfs"
	}
	if tmpfs == nil {
		b.add(result{Name: name, Note: skipped})
		return nil
	}
	b.addRatio(name, size, t.of("tmpfs"), t.of("dd"), "the same dd to disk", 0,
		"; staging and the local backend's files on a tmpfs: the work that is not the disk's (HTTP, SHA-256, SQLite commit, the plugin's record, and a copy into tmpfs, which the disk's direct I/O does not make)")
	return nil
}

// ingestRSS reports the peak RSS of a fresh host through rounds of rssParts parts in flight.
func (b *bench) ingestRSS() error {
	s, err := b.start("ingest-rss", nil)
	if err != nil {
		return err
	}
	idle, _ := s.peakRSS()
	for range 3 {
		if _, err := b.putTrial(s, rssParts*partSize, rssParts, nil, nil)(); err != nil {
			return err
		}
	}
	peak, _ := s.peakRSS()
	met := peak <= 64<<20
	b.add(result{Name: fmt.Sprintf("host peak RSS, %d parts of 50 MiB in flight", rssParts), Value: mib(peak), Unit: "MiB",
		Target: "<= 64 MiB", Met: &met, Note: fmt.Sprintf("VmHWM over 3 rounds; %.0f MiB after start", mib(idle))})
	return nil
}
