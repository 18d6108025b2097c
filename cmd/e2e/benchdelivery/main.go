// Command benchdelivery measures the part-wise background delivery of issue 9 for each
// storage backend (local, smb on the TEST_SMB_* Samba, s3 on the TEST_S3_* server), in one
// run, with one file of -mib MiB sent in 50 MiB parts, -parallel (4) at once. For each
// backend, in this order:
//
//   - delivery alone: the backend storing the same bytes with nothing else running, written
//     straight to it the way its plugin stores a part-wise object (no host, no plugin, the
//     bytes from memory, so that no cache state flatters either side). Its parts phase is the
//     backend's own delivery speed; on S3 its CompleteMultipartUpload (same server, same part
//     count and size) is the floor of a part-wise commit.
//   - parts alone: the same upload at full speed to a host whose backend does nothing until
//     complete (the whole-only plugin of sdk/README.md, built in the run): the host's ingest
//     alone, with the same HTTP, staging, fsync and SQLite work and no delivery running. The
//     upload is cancelled after its last part.
//   - (a) full speed: the upload to a host on the backend at full speed, from init to
//     complete's 200, against the larger of parts alone and delivery alone.
//   - (b) throttled: the client paced to -throttle (0.7) of the slower of the backend's speed
//     and the host's ingest speed (a client faster than the host's ingest would not be
//     throttled at all): the time from the last part's 200 to complete's 200, staging's peak.
//   - (b2): where the host's own rate in (a) (size / total) is below (b)'s, (b) measures the
//     host's back-pressure (429 when an upload holds too many undelivered parts) rather
//     than a delivery that keeps up; (b2) paces the client to -throttle of that rate.
//
// Every upload goes to a fresh host and reports staging's peak (the staging directory sampled
// every 50 ms), the delivery backlog at the last part's 200 (status sampled every 100 ms),
// part requests refused with 429 (sent again after the Retry-After of 2 s, as the CLI does;
// the client keeps within 16 parts of the lowest one missing, see window), and the peak RSS (VmHWM) and CPU time of the host and of its plugin. As root it drops the
// page cache before each measurement, so that all start from the same, empty, cache.
//
// Then (-clients) the seed's Python example (seed_client.py: init, parts in order, one
// complete call) and bin/chunked-upload each upload a file of the same size to a host on each
// backend with the default COMPLETE_WAIT_SECONDS; what complete answered and when come from
// the host's request log.
//
// `make bench` runs it (BENCH_BIG_MB, default 2048). Results go to -out as JSON and to
// stdout as tables; every figure carries the machine's load average (start-end).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

const chunkMiB = 50

func main() {
	bin := flag.String("bin", "bin", "directory with chunked-uploader, chunked-upload and the plugins")
	dir := flag.String("dir", "bench-work", "work directory; the benchmark uses (and removes) its delivery/ subdirectory")
	out := flag.String("out", "bench-results-delivery.json", "JSON results file")
	sizeMiB := flag.Int64("mib", 2048, "size of the file, MiB")
	parallel := flag.Int("parallel", 4, "parts in flight")
	throttle := flag.Float64("throttle", 0.7, "client rate in (b), as a fraction of the backend's delivery speed measured first")
	backends := flag.String("backends", "local,smb,s3", "backends to measure, comma-separated")
	clients := flag.Bool("clients", true, "also upload with the seed's Python example and bin/chunked-upload")
	measure := flag.Bool("measure", true, "run the measurements (-measure=false: only the clients)")
	keep := flag.Bool("keep", false, "keep the work directory (host logs, databases) for inspection")
	hostEnv := flag.String("host-env", "", "extra settings of every host, K=V,K=V (for experiments: GODEBUG=gctrace=1, PART_DELIVERIES_PER_UPLOAD=8)")
	flag.Parse()
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	b := &bench{bin: abs(*bin), work: filepath.Join(abs(*dir), "delivery"), size: *sizeMiB << 20, parallel: *parallel,
		throttle: *throttle, backends: strings.Split(*backends, ","), clients: *clients, measure: *measure, keep: *keep,
		hostEnv: map[string]string{}}
	for _, kv := range strings.Split(*hostEnv, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			b.hostEnv[k] = v
		}
	}
	err := b.run(context.Background())
	if b.res != nil {
		b.res.print(os.Stdout)
		if data, jerr := json.MarshalIndent(b.res, "", "  "); jerr == nil {
			if werr := os.WriteFile(*out, append(data, '\n'), 0o644); werr != nil && err == nil {
				err = werr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchdelivery:", err)
		os.Exit(1)
	}
}

type bench struct {
	bin, work string
	size      int64
	parallel  int
	throttle  float64
	backends  []string
	clients   bool
	measure   bool
	keep      bool
	hostEnv   map[string]string // added to every host's settings

	root    string // the repository
	data    []byte // one full part; the file is it repeated
	sha     string // the file's SHA-256
	memoDir string // PLUGIN_DIR of the parts-alone host
	res     *results
	runs    int
}

func (b *bench) run(ctx context.Context) error {
	var err error
	if b.root, err = harness.RepoRoot(); err != nil {
		return err
	}
	if err := os.RemoveAll(b.work); err != nil {
		return err
	}
	if err := os.MkdirAll(b.work, 0o755); err != nil {
		return err
	}
	if !b.keep {
		defer os.RemoveAll(b.work)
	}
	host, _ := os.Hostname()
	b.res = &results{Date: time.Now().UTC().Format(time.RFC3339), Host: host, CPUs: runtime.NumCPU(), Go: runtime.Version(),
		SizeBytes: b.size, ChunkBytes: chunkMiB << 20, Parallel: b.parallel, Throttle: b.throttle}
	b.res.CachesDropped = dropCaches() == nil
	if !b.res.CachesDropped {
		fmt.Fprintln(os.Stderr, "benchdelivery: cannot drop the page cache (not root?): measurements start from whatever it holds")
	}

	if b.data, err = alignedBuffer(chunkMiB << 20); err != nil {
		return err
	}
	rand.NewChaCha8([32]byte{9}).Read(b.data)
	b.sha = fileSHA(b.data, b.size)
	b.memoDir = filepath.Join(b.work, "memo-bin")
	if b.measure {
		logf("building the whole-only plugin of sdk/README.md for the parts-alone host")
		if err := buildMemo(b.root, b.work, b.memoDir); err != nil {
			return err
		}
	}
	// A backend or client that fails is reported, and the others still run.
	var errs []error
	for _, name := range b.backends {
		if !b.measure {
			break
		}
		name = strings.TrimSpace(name)
		r, err := b.measureBackend(ctx, name)
		if r != nil {
			b.res.Backends = append(b.res.Backends, r)
		}
		if err != nil {
			if r != nil {
				r.Error = err.Error()
			}
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if b.clients {
		if err := b.runClients(ctx); err != nil {
			errs = append(errs, fmt.Errorf("clients: %w", err))
		}
	}
	return errors.Join(errs...)
}

// fileSHA is the SHA-256 of the file: data repeated to size bytes.
func fileSHA(data []byte, size int64) string {
	var h hash.Hash = sha256.New()
	for left := size; left > 0; left -= int64(len(data)) {
		h.Write(data[:min(int64(len(data)), left)])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s benchdelivery: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// open returns the backend called name, with a fresh area (directory or bucket) of its own.
func (b *bench) open(ctx context.Context, name string) (backend, error) {
	tag := fmt.Sprintf("benchdelivery-%d", time.Now().UnixNano())
	switch name {
	case "local":
		return &localBackend{root: filepath.Join(b.work, "local-store")}, nil
	case "smb":
		return newSMB(tag)
	case "s3":
		return newS3(ctx, tag)
	}
	return nil, fmt.Errorf("unknown backend %q (local, smb, s3)", name)
}

// fresh drops the page cache (if it can) before a measurement.
func (b *bench) fresh() {
	if b.res.CachesDropped {
		if err := dropCaches(); err != nil {
			fmt.Fprintln(os.Stderr, "benchdelivery: dropping the page cache:", err)
		}
	}
}

// measureBackend runs the measurements of one backend, in this order: delivery alone, parts alone,
// (a) full speed, (b) throttled (which needs the others), and (b2).
func (b *bench) measureBackend(ctx context.Context, name string) (*backendResult, error) {
	be, err := b.open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer be.close(context.WithoutCancel(ctx))
	r := &backendResult{Backend: name}

	logf("%s: delivery alone (%d MiB)", name, b.size>>20)
	b.fresh()
	if r.DeliveryAlone, err = be.deliverAlone(ctx, b.data, b.size, b.parallel); err != nil {
		return r, fmt.Errorf("delivery alone: %w", err)
	}
	if name == "s3" {
		r.S3Floor = r.DeliveryAlone.CommitSeconds
	}

	logf("%s: parts alone", name)
	if r.PartsAlone, err = b.partsAlone(ctx); err != nil {
		return r, fmt.Errorf("parts alone: %w", err)
	}

	logf("%s: (a) full speed", name)
	if r.Full, err = b.upload(ctx, be, 0); err != nil {
		return r, fmt.Errorf("(a) full speed: %w", err)
	}

	// Below the backend's speed, and below the host's ingest speed too: a client faster
	// than the host can take parts would not be throttled at all.
	r.ThrottleMBps = b.throttle * min(r.DeliveryAlone.MBps, r.PartsAlone.ClientMBps)
	logf("%s: (b) throttled to %.0f MB/s", name, r.ThrottleMBps)
	if r.Throttled, err = b.upload(ctx, be, r.ThrottleMBps*1e6); err != nil {
		return r, fmt.Errorf("(b) throttled: %w", err)
	}
	// Where the host delivers slower than that (its rate in (a), end to end, is lower), (b)
	// measures the host's back-pressure more than a delivery that keeps up: measure also
	// with the client below the host's own rate.
	if own := b.throttle * float64(b.size) / 1e6 / r.Full.TotalSeconds; own < 0.9*r.ThrottleMBps {
		r.HostThrottleMBps = own
		logf("%s: (b2) throttled to %.0f MB/s, below the host's own delivery rate", name, own)
		if r.HostThrottled, err = b.upload(ctx, be, own*1e6); err != nil {
			return r, fmt.Errorf("(b2) throttled: %w", err)
		}
	}
	r.evaluate(b.parallel, chunkMiB<<20)
	return r, nil
}

// upload sends the file to a fresh host on be (rate: client bytes per second, 0: full
// speed), completes it, and checks and removes the delivered object.
func (b *bench) upload(ctx context.Context, be backend, rate float64) (*sendResult, error) {
	b.runs++
	env := be.hostEnv()
	env["COMPLETE_WAIT_SECONDS"] = "3600" // complete's own time, not a 202
	h, err := startHost(b.bin, b.bin, filepath.Join(b.work, fmt.Sprintf("host-%d-%s", b.runs, be.name())), env, b.hostEnv)
	if err != nil {
		return nil, err
	}
	defer h.stop()
	b.fresh()
	name := fmt.Sprintf("bench-%d.bin", b.runs)
	r, err := send(ctx, h, b.data, sendOptions{name: name, size: b.size, parallel: b.parallel, rate: rate,
		complete: true, sha: b.sha, wantMode: "parts"})
	if err != nil {
		return nil, fmt.Errorf("%w\nhost log:\n%s", err, h.logTail())
	}
	if r.CompleteStatus != 200 || r.FinalPath == "" {
		return r, fmt.Errorf("complete answered %d with final_path %q, want 200 and a path", r.CompleteStatus, r.FinalPath)
	}
	if err := be.verify(ctx, r.FinalPath, b.size); err != nil {
		return r, fmt.Errorf("the delivered object: %w", err)
	}
	return r, nil
}

// partsAlone sends the file at full speed to a fresh host on the whole-only plugin, which
// stages it and delivers nothing while the parts arrive, then cancels the upload.
func (b *bench) partsAlone(ctx context.Context) (*sendResult, error) {
	b.runs++
	dir := filepath.Join(b.work, fmt.Sprintf("host-%d-memo", b.runs))
	h, err := startHost(b.bin, b.memoDir, dir, map[string]string{"STORAGE_BACKEND": "memo", "MEMO_ROOT": filepath.Join(dir, "memo-root")}, b.hostEnv)
	if err != nil {
		return nil, err
	}
	defer h.stop()
	b.fresh()
	r, err := send(ctx, h, b.data, sendOptions{name: fmt.Sprintf("bench-%d.bin", b.runs), size: b.size, parallel: b.parallel,
		wantMode: "whole"})
	if err != nil {
		return nil, fmt.Errorf("%w\nhost log:\n%s", err, h.logTail())
	}
	return r, nil
}
