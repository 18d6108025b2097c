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

// The receive-and-hash floor: the least work a server does that answers a part only once
// it has read every byte from its socket and hashed it. The sink is this program run again
// as a separate process (as the host is one), a plain net/http server that reads each PUT's
// body in 128 KiB blocks and hashes it on a second goroutine, so that receiving and
// hashing overlap, and does nothing else: no disk, no database, no authentication, no CRC.
// The bench sends it the same part file from the same client over the same loopback as it
// sends the host. On a machine whose cores, not its disk, bound the PUT (the client, the
// kernel's TCP on both ends of the loopback and the SHA-256 share them), a server built this
// way gets no nearer the disk from that client, and the host's PUT against the floor is
// what the host adds to it. A faster client (see congestionClient) raises the floor.

// sinkEnv, set to a listen address, makes this program the sink instead of the bench.
const sinkEnv = "CHUNKED_UPLOADER_BENCH_SINK"

const (
	sinkBlock = 128 << 10 // the host's read size (staging's blockSize)
	sinkDepth = 16        // blocks of one body between the reader and the hasher
)

var sinkBlocks = sync.Pool{New: func() any { return new([sinkBlock]byte) }}

// runSink serves the sink on addr until the process is killed; it never returns, and exits
// with status 1 if it cannot listen. PUT answers {"size":N,"sha256":"<hex>"} for a body
// read to its end, 400 for one cut short of its Content-Length or failing to read.
func runSink(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })
	mux.HandleFunc("PUT /", func(w http.ResponseWriter, r *http.Request) {
		sum, n, err := hashBody(r.Body)
		if err == nil && r.ContentLength >= 0 && n != r.ContentLength {
			err = fmt.Errorf("the body has %d bytes, its Content-Length %d", n, r.ContentLength)
		}
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

// hashBody reads r to io.EOF one block at a time, handing each block to a second goroutine
// that hashes it while the next is read, and returns the hex SHA-256 and the size of what
// it read. Any other error ends it with that error (net/http's body reports a client gone
// before its Content-Length as io.ErrUnexpectedEOF).
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
		n, err := fill(r, buf[:])
		size += int64(n)
		full <- block{buf, n}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rerr = err
			}
			break
		}
	}
	close(full)
	s := <-sum
	return hex.EncodeToString(s), size, rerr
}

// fill reads from r until buf is full or r fails, and returns how much it read and, if it
// stopped short, r's error as it is (io.EOF included, unlike io.ReadFull).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// sink is a running sink process.
type sink struct {
	*harness.Process
	url    string
	client *http.Client // nil: benchClient
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
		return nil, fmt.Errorf("sink: %w", err)
	}
	port, err := harness.FreePort()
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	log := filepath.Join(dir, "sink.log")
	// SERVER_PORT only makes StartProcess fill in Base; the sink listens on sinkEnv's address.
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
				if err := request(s.client, s.url, "PUT", fmt.Sprintf("/part/%d", n), f, size, nil, &got); err != nil {
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
