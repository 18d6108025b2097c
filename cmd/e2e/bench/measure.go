package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

const partSize = 50 << 20

// result is one line of the report.
type result struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline float64 `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
	Met      *bool   `json:"met,omitempty"`
	Note     string  `json:"note,omitempty"`
}

type bench struct {
	bin, dir     string
	rounds       int
	deliverySize int64
	part         []byte // partSize pseudo-random bytes
	partFile     string // the same bytes in a file, for the baselines
	results      []result

	mu       sync.Mutex
	servers  []*server
	cleanups []func() // run in reverse order by cleanup
}

func (b *bench) add(r result) { b.results = append(b.results, r) }

// onCleanup registers f to run when the bench ends (or is interrupted).
func (b *bench) onCleanup(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanups = append(b.cleanups, f)
}

// cleanup stops every server and runs the registered cleanups; it may run more than once.
func (b *bench) cleanup() {
	b.mu.Lock()
	servers, cleanups := b.servers, b.cleanups
	b.servers, b.cleanups = nil, nil
	b.mu.Unlock()
	for _, s := range servers {
		s.stop()
	}
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
}

func (b *bench) start(name string, extra map[string]string) (*server, error) {
	s, err := startServer(b.bin, filepath.Join(b.dir, name), extra)
	if err == nil {
		b.mu.Lock()
		b.servers = append(b.servers, s)
		b.mu.Unlock()
	}
	return s, err
}

// run prepares the work directory and the part data, then runs the sections in order.
func (b *bench) run(selected []section) error {
	unmountUnder(b.dir)
	if err := os.RemoveAll(b.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	b.onCleanup(func() { os.RemoveAll(b.dir) })
	defer b.cleanup()
	b.part = make([]byte, partSize)
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	rng.Read(b.part)
	b.partFile = filepath.Join(b.dir, "part.bin")
	if err := os.WriteFile(b.partFile, b.part, 0o644); err != nil {
		return err
	}
	for _, s := range selected {
		fmt.Fprintf(os.Stderr, "bench: %s\n", s.name)
		if err := s.run(b); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// unmountUnder unmounts what an interrupted earlier run left mounted under dir (Linux;
// elsewhere there is no mountinfo and nothing to do).
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			exec.Command("umount", f[4]).Run()
		}
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// timed runs f and returns its duration.
func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// dd writes the part file to out with conv=fdatasync and any further operands (such as
// oflag=direct), as the baseline of a part upload.
func dd(partFile, out string, operands ...string) error {
	cmd := exec.Command("dd", append([]string{"if=" + partFile, "of=" + out, "bs=1M", "conv=fdatasync"}, operands...)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dd: %v %s", err, msg)
	}
	return nil
}

// parallel runs f(0..n-1) with at most width at once and returns the first error.
func parallel(n, width int, f func(int) error) error {
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
