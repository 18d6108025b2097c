package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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
	part         []byte
	partFile     string
	results      []result
	servers      []*server
}

func (b *bench) add(r result) { b.results = append(b.results, r) }

func (b *bench) stop() {
	for _, s := range b.servers {
		s.stop()
	}
}

func (b *bench) start(name string, extra map[string]string) (*server, error) {
	s, err := startServer(b.bin, filepath.Join(b.dir, name), extra)
	if err == nil {
		b.servers = append(b.servers, s)
	}
	return s, err
}

func (b *bench) run() error {
	if err := os.RemoveAll(b.dir); err != nil {
		return err
	}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(b.dir)
	defer b.stop()
	b.part = make([]byte, partSize)
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	rng.Read(b.part)
	b.partFile = filepath.Join(b.dir, "part.bin")
	if err := os.WriteFile(b.partFile, b.part, 0o644); err != nil {
		return err
	}
	local, err := b.start("local", nil)
	if err != nil {
		return err
	}
	if err := b.ingest(local); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	staged, id, err := b.uploadBig(local, "big/local.bin")
	if err != nil {
		return fmt.Errorf("delivery upload: %w", err)
	}
	if err := b.deliverLocal(local, staged, id); err != nil {
		return fmt.Errorf("local delivery: %w", err)
	}
	hostRSS, pluginRSS := local.peakRSS()
	met := hostRSS <= 64<<20
	b.add(result{Name: "host peak RSS (local runs)", Value: mib(hostRSS), Unit: "MiB", Target: "<= 64 MiB", Met: &met})
	b.add(result{Name: "local plugin peak RSS", Value: mib(pluginRSS), Unit: "MiB"})
	if err := b.s3(); err != nil {
		return fmt.Errorf("s3: %w", err)
	}
	if err := b.statusLatency(); err != nil {
		return fmt.Errorf("status latency: %w", err)
	}
	return nil
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

// dd writes the part file to out with conv=fdatasync, as the baseline of a part upload.
func dd(partFile, out string) error {
	cmd := exec.Command("dd", "if="+partFile, "of="+out, "bs=1M", "conv=fdatasync")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dd: %v %s", err, msg)
	}
	return nil
}

// ingest measures single-stream and 4-parallel part uploads against dd, interleaved.
func (b *bench) ingest(s *server) error {
	const perRound = 4
	var ours, base, ours4, base4 []float64
	for round := 0; round < b.rounds; round++ {
		// One stream.
		up, err := s.init(fmt.Sprintf("ingest/%d.bin", round), perRound*partSize)
		if err != nil {
			return err
		}
		d, err := timed(func() error {
			for n := 0; n < perRound; n++ {
				if err := s.put(up, n, b.part); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		ours = append(ours, perRound*partSize/d.Seconds()/1e6)
		d, err = timed(func() error {
			for n := 0; n < perRound; n++ {
				if err := dd(b.partFile, filepath.Join(b.dir, fmt.Sprintf("dd%d", n))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		base = append(base, perRound*partSize/d.Seconds()/1e6)
		// Four in parallel.
		up4, err := s.init(fmt.Sprintf("ingest4/%d.bin", round), 2*perRound*partSize)
		if err != nil {
			return err
		}
		d, err = timed(func() error { return parallel(2*perRound, 4, func(n int) error { return s.put(up4, n, b.part) }) })
		if err != nil {
			return err
		}
		ours4 = append(ours4, 2*perRound*partSize/d.Seconds()/1e6)
		d, err = timed(func() error {
			return parallel(2*perRound, 4, func(n int) error { return dd(b.partFile, filepath.Join(b.dir, fmt.Sprintf("dd%d", n))) })
		})
		if err != nil {
			return err
		}
		base4 = append(base4, 2*perRound*partSize/d.Seconds()/1e6)
		for _, id := range []string{up.FileID, up4.FileID} {
			s.do("DELETE", "/upload/"+id, nil, 0, map[string]string{"X-API-Key": s.key}, nil)
		}
		for n := 0; n < 2*perRound; n++ {
			os.Remove(filepath.Join(b.dir, fmt.Sprintf("dd%d", n)))
		}
	}
	o, bl := median(ours), median(base)
	met := o/bl >= 0.8
	b.add(result{Name: "ingest, one stream of 50 MiB parts", Value: o, Unit: "MB/s", Baseline: bl, Ratio: o / bl,
		Target: ">= 0.8 x dd conv=fdatasync", Met: &met, Note: fmt.Sprintf("median of %d rounds of %d parts", b.rounds, perRound)})
	o4, bl4 := median(ours4), median(base4)
	b.add(result{Name: "ingest, 4 parts in parallel", Value: o4, Unit: "MB/s", Baseline: bl4, Ratio: o4 / bl4,
		Note: "baseline: 4 parallel dd conv=fdatasync"})
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

// uploadBig uploads deliverySize bytes (the part data repeated) and returns the staged
// part files in order and the upload id.
func (b *bench) uploadBig(s *server, name string) ([]string, string, error) {
	up, err := s.init(name, b.deliverySize)
	if err != nil {
		return nil, "", err
	}
	err = parallel(up.TotalParts, 4, func(n int) error {
		size := min(partSize, b.deliverySize-int64(n)*partSize)
		return s.put(up, n, b.part[:size])
	})
	if err != nil {
		return nil, "", err
	}
	files := make([]string, up.TotalParts)
	for n := range files {
		files[n] = filepath.Join(s.dir, "staging", up.FileID, fmt.Sprintf("%06d.part", n))
	}
	return files, up.FileID, nil
}

// deliverLocal times cat of the staged parts + sync, then the real delivery.
func (b *bench) deliverLocal(s *server, staged []string, id string) error {
	out := filepath.Join(b.dir, "cat.out")
	args := append([]string{"-c", `cat "$@" > "$0" && sync "$0"`, out}, staged...)
	catTime, err := timed(func() error {
		msg, err := exec.Command("sh", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("cat: %v %s", err, msg)
		}
		return nil
	})
	if err != nil {
		return err
	}
	os.Remove(out)
	var finalPath string
	ours, err := timed(func() error { var err error; finalPath, err = s.complete(id); return err })
	if err != nil {
		return err
	}
	if st, err := os.Stat(finalPath); err != nil || st.Size() != b.deliverySize {
		return fmt.Errorf("delivered file %s: %v", finalPath, err)
	}
	os.Remove(finalPath)
	ratio := ours.Seconds() / catTime.Seconds()
	met := ratio <= 1.5
	b.add(result{Name: fmt.Sprintf("delivery of %d MiB to local", b.deliverySize>>20), Value: ours.Seconds(), Unit: "s",
		Baseline: catTime.Seconds(), Ratio: ratio, Target: "<= 1.5 x cat + sync", Met: &met,
		Note: fmt.Sprintf("%.0f MB/s", float64(b.deliverySize)/ours.Seconds()/1e6)})
	return nil
}

// statusLatency measures init and status of an upload of 10,000 parts.
func (b *bench) statusLatency() error {
	s, err := b.start("status", map[string]string{"CHUNK_SIZE_MB": "1", "MAX_PARTS": "10000"})
	if err != nil {
		return err
	}
	var up *initResp
	initTime, err := timed(func() error { var err error; up, err = s.init("many.bin", 10000<<20); return err })
	if err != nil {
		return err
	}
	b.add(result{Name: "init of an upload of 10,000 parts", Value: float64(initTime.Milliseconds()), Unit: "ms"})
	for _, q := range []string{"", "?include_parts=false"} {
		var lat []float64
		for i := 0; i < 40; i++ {
			d, err := timed(func() error {
				return s.do("GET", "/upload/"+up.FileID+"/status"+q, nil, 0, map[string]string{"X-API-Key": s.key}, nil)
			})
			if err != nil {
				return err
			}
			lat = append(lat, float64(d.Microseconds())/1000)
		}
		sort.Float64s(lat)
		name := "status of 10,000 parts (with parts), p50"
		if q != "" {
			name = "status of 10,000 parts (include_parts=false), p50"
		}
		b.add(result{Name: name, Value: lat[len(lat)/2], Unit: "ms", Note: fmt.Sprintf("p99 %.1f ms over %d requests", lat[len(lat)*99/100], len(lat))})
	}
	return nil
}
