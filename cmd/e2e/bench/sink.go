package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// The receive-and-hash floor: the least work any server does that answers a part only
// once it has its SHA-256. The sink is this program run again as a separate process (as
// the host is one), a plain net/http server that reads each PUT's body and hashes it, with
// receiving and hashing overlapped on two goroutines, and does nothing else: no disk, no
// database, no authentication, no CRC. The client sends it the same part file over the
// same loopback as it sends the host. On a machine whose cores, not its disk, bound the
// PUT (the client, the kernel's TCP on both ends of the loopback and the SHA-256 share
// them), this floor is the most a part PUT can reach, whatever the server does, and the
// host's PUT against it is what the host adds.

// sinkEnv, set to a listen address, makes this program the sink instead of the bench.
const sinkEnv = "CHUNKED_UPLOADER_BENCH_SINK"

const (
	sinkBlock = 128 << 10 // the host's read size (staging's blockSize)
	sinkDepth = 16        // blocks of one body between the reader and the hasher
)

var sinkBlocks = sync.Pool{New: func() any { return new([sinkBlock]byte) }}

// runSink serves the sink on addr until the process is killed.
func runSink(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })
	mux.HandleFunc("PUT /", func(w http.ResponseWriter, r *http.Request) {
		sum, n, err := hashBody(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"size":%d,"sha256":%q}`, n, sum)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintln(os.Stderr, "sink:", srv.ListenAndServe())
	os.Exit(1)
}

// hashBody reads r to its end one block at a time, handing each block to a second
// goroutine that hashes it while the next is read, and returns the hex SHA-256 and the
// size of what it read.
func hashBody(r io.Reader) (string, int64, error) {
	type block struct {
		buf *[sinkBlock]byte
		n   int
	}
	full := make(chan block, sinkDepth)
	free := make(chan struct{}, sinkDepth)
	sum := make(chan []byte, 1)
	go func() {
		h := sha256.New()
		for b := range full {
			h.Write(b.buf[:b.n])
			sinkBlocks.Put(b.buf)
			<-free
		}
		sum <- h.Sum(nil)
	}()
	var size int64
	var rerr error
	for {
		free <- struct{}{}
		buf := sinkBlocks.Get().(*[sinkBlock]byte)
		n, err := io.ReadFull(r, buf[:])
		size += int64(n)
		full <- block{buf, n}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				rerr = err
			}
			break
		}
	}
	close(full)
	s := <-sum
	return hex.EncodeToString(s), size, rerr
}

// sink is a running sink process.
type sink struct {
	*harness.Process
	url    string
	client *http.Client // nil: http.DefaultClient
}

// via returns a copy of s whose requests go through c.
func (s *sink) via(c *http.Client) *sink {
	v := *s
	v.client = c
	return &v
}

// startSink starts the sink in dir as a process of its own.
func (b *bench) startSink(dir string) (*sink, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	log := filepath.Join(dir, "sink.log")
	p, err := harness.StartProcess(exe, nil, dir, map[string]string{sinkEnv: "127.0.0.1:" + strconv.Itoa(port),
		"SERVER_PORT": strconv.Itoa(port)}, log, log)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &sink{Process: p, url: p.Base}
	b.onCleanup(func() { s.Stop(5 * time.Second) })
	if err := harness.WaitHealthy(s.url, p.Exited, 30*time.Second); err != nil {
		return nil, fmt.Errorf("sink did not start: %v:\n%s", err, p.Stdout())
	}
	return s, nil
}

// sinkTrial times width PUTs of the part file at once to the sink, each checked against
// the part's size and SHA-256.
func (b *bench) sinkTrial(s *sink, width int) trial {
	want := sha256.Sum256(b.part)
	wantHex := hex.EncodeToString(want[:])
	size := int64(len(b.part))
	srv := &server{url: s.url, client: s.client}
	return func() (time.Duration, error) {
		return timed(func() error {
			return parallel(width, width, func(n int) error {
				f, err := os.Open(b.partFile)
				if err != nil {
					return err
				}
				defer f.Close()
				var got struct {
					Size   int64  `json:"size"`
					SHA256 string `json:"sha256"`
				}
				if err := srv.do("PUT", fmt.Sprintf("/part/%d", n), f, size, nil, &got); err != nil {
					return fmt.Errorf("sink: %w", err)
				}
				if got.Size != size || got.SHA256 != wantHex {
					return fmt.Errorf("sink: got %d bytes with SHA-256 %s, sent %d with %s", got.Size, got.SHA256, size, wantHex)
				}
				return nil
			})
		})
	}
}
