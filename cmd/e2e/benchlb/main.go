// Command benchlb measures what a load balancer in front of a node costs: the same upload
// (init and every part) sent straight to one node and through HAProxy (and nginx),
// configured as scripts/lb-config.sh ships it, in interleaved rounds of one run. It prints
// the throughputs and their ratios (target: through HAProxy at least 0.9 of straight) and
// writes them as JSON, with the CPU time the balancer and the node spent per GB.
//
// Interference from other work on the machine only ever slows a round down, so the target is
// checked on the fastest round of each way (the median is reported too).
//
// The node stages 50 MiB parts on the work directory's disk; the client sends them from
// memory, so both ways differ only by the balancer. Complete is left out: the delivery runs
// on the node, the balancer carries only its small request. Each upload is cancelled after
// it was measured, which removes its parts. `make bench` runs it after cmd/e2e/bench.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/e2e/internal/lb"
	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

const (
	mib       = 1 << 20
	chunkMiB  = 50
	apiKey    = "benchlb-api-key-0123456789abcdef"
	jwtSecret = "benchlb-jwt-secret-0123456789abcdef-0123456789abcdef"
	target    = 0.9
)

func main() {
	bin := flag.String("bin", "bin", "directory with chunked-uploader and its plugins")
	dir := flag.String("dir", "bench-work", "work directory (staging and delivered files of the node)")
	out := flag.String("out", "bench-lb-results.json", "JSON results file")
	sizeMiB := flag.Int("mib", 400, "size of the upload, MiB (sent in 50 MiB parts)")
	rounds := flag.Int("rounds", 5, "interleaved rounds of each way")
	parallel := flag.Int("parallel", 2, "parts sent at once")
	flag.Parse()
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	res, err := run(abs(*bin), filepath.Join(abs(*dir), "lb"), int64(*sizeMiB)*mib, *rounds, *parallel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchlb:", err)
		os.Exit(1)
	}
	res.print(os.Stdout)
	data, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "benchlb:", err)
		os.Exit(1)
	}
}

// way is one path from the client to the node.
type way struct {
	Name string `json:"name"`
	url  string
	// MBps and Best are the median and the highest throughput over the rounds (init and
	// parts); the ratios are to straight.
	MBps      float64   `json:"median_mb_per_s"`
	Ratio     float64   `json:"median_ratio,omitempty"`
	Best      float64   `json:"best_mb_per_s"`
	BestRatio float64   `json:"best_ratio,omitempty"`
	All       []float64 `json:"rounds_mb_per_s"`
	// CPU seconds per GB carried: of the balancer, and of the node.
	BalancerCPUPerGB float64 `json:"balancer_cpu_s_per_gb,omitempty"`
	NodeCPUPerGB     float64 `json:"node_cpu_s_per_gb"`

	balancerCPU func() time.Duration
	cpuB, cpuN  time.Duration
	bytes       int64
}

type results struct {
	SizeBytes int64  `json:"size_bytes"`
	ChunkMiB  int    `json:"chunk_mib"`
	Parallel  int    `json:"parallel"`
	Rounds    int    `json:"rounds"`
	Ways      []*way `json:"ways"`
	Target    string `json:"target"`
	Met       bool   `json:"target_met"`
}

func run(binDir, dir string, size int64, rounds, parallel int) (*results, error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	for _, d := range []string{"node", "uploads", lb.HAProxy, lb.Nginx} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	defer os.RemoveAll(dir)
	ports, err := lb.FreePorts(3)
	if err != nil {
		return nil, err
	}
	n, err := lb.NewNode(binDir, "a", filepath.Join(dir, "node"), ports[0], map[string]string{
		"API_KEY": apiKey, "JWT_SECRET": jwtSecret, "CHUNK_SIZE_MB": strconv.Itoa(chunkMiB),
		"STORAGE_BACKEND": "local", "LOCAL_STORAGE_PATH": filepath.Join(dir, "uploads"),
		"DRAIN_TIMEOUT": "0", "COMPLETE_WAIT_SECONDS": "600", "STAGING_RESERVE_MB": "0",
	})
	if err != nil {
		return nil, err
	}
	if err := n.Start(time.Minute); err != nil {
		return nil, err
	}
	defer n.Stop()
	ways := []*way{{Name: "straight to the node", url: n.URL()}}
	for i, kind := range []string{lb.HAProxy, lb.Nginx} {
		b, err := lb.StartBalancer(root, kind, filepath.Join(dir, kind), ports[1+i], []*lb.Node{n})
		if err != nil {
			return nil, err
		}
		defer b.Stop()
		ways = append(ways, &way{Name: "through " + kind, url: b.URL(), balancerCPU: b.CPU})
	}

	chunk := make([]byte, chunkMiB*mib)
	r := rand.NewChaCha8([32]byte{42})
	_, _ = r.Read(chunk)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: parallel}}
	// One warm-up upload per way, then interleaved rounds in a rotating order.
	for _, w := range ways {
		if _, err := upload(c, w.url, chunk, size, parallel); err != nil {
			return nil, fmt.Errorf("%s: %w", w.Name, err)
		}
	}
	for round := range rounds {
		for i := range ways {
			w := ways[(i+round)%len(ways)]
			nodeCPU, lbCPU := n.CPU(), w.cpu()
			took, err := upload(c, w.url, chunk, size, parallel)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", w.Name, err)
			}
			w.All = append(w.All, float64(size)/1e6/took.Seconds())
			w.cpuN += n.CPU() - nodeCPU
			w.cpuB += w.cpu() - lbCPU
			w.bytes += size
		}
	}
	res := &results{SizeBytes: size, ChunkMiB: chunkMiB, Parallel: parallel, Rounds: rounds, Ways: ways,
		Target: fmt.Sprintf("best round through haproxy >= %.1f x best round straight", target)}
	for _, w := range ways {
		gb := float64(w.bytes) / 1e9
		w.NodeCPUPerGB = w.cpuN.Seconds() / gb
		if w.balancerCPU != nil {
			w.BalancerCPUPerGB = w.cpuB.Seconds() / gb
		}
		w.MBps, w.Best = median(w.All), slices.Max(w.All)
		if w != ways[0] {
			w.Ratio, w.BestRatio = w.MBps/ways[0].MBps, w.Best/ways[0].Best
		}
	}
	res.Met = ways[1].BestRatio >= target
	return res, nil
}

// cpu is the balancer's CPU time so far (0 straight to the node).
func (w *way) cpu() time.Duration {
	if w.balancerCPU == nil {
		return 0
	}
	return w.balancerCPU()
}

// upload sends one upload of size bytes (every part is chunk, the last cut short) through
// base with parallel parts at once and returns the time from init to the last part's
// answer; then it cancels the upload.
func upload(c *http.Client, base string, chunk []byte, size int64, parallel int) (time.Duration, error) {
	start := time.Now()
	body, _ := json.Marshal(map[string]any{"filename": "bench.bin", "total_size": size})
	var up harness.InitResponse
	if err := call(c, http.MethodPost, base+"/upload/init", map[string]string{"X-API-Key": apiKey, "Content-Type": "application/json"},
		body, http.StatusOK, &up); err != nil {
		return 0, err
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for n, p := range up.Parts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			data := chunk[:min(int64(len(chunk)), size-int64(n)*int64(len(chunk)))]
			if err := call(c, http.MethodPut, base+"/upload/"+up.FileID+"/part/"+strconv.Itoa(n),
				map[string]string{"Authorization": "Bearer " + p.Token, "Content-Type": "application/octet-stream"},
				data, http.StatusOK, nil); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if err := call(c, http.MethodDelete, base+"/upload/"+up.FileID, map[string]string{"X-API-Key": apiKey}, nil, http.StatusOK, nil); err != nil {
		return 0, err
	}
	return took, nil
}

// call makes a request and decodes the answer into v; a status other than want is an error.
func call(c *http.Client, method, url string, header map[string]string, body []byte, want int, v any) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, val := range header {
		req.Header.Set(k, val)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, bytes.TrimSpace(b))
	}
	if v != nil {
		return json.Unmarshal(b, v)
	}
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "\nLoad balancer: one upload of %d MiB (init and parts of %d MiB, %d at once); median of %d interleaved rounds\n\n",
		r.SizeBytes/mib, r.ChunkMiB, r.Parallel, r.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "way\tbest\tratio\tmedian\tratio\trounds (MB/s)\tbalancer CPU\tnode CPU\t")
	for _, x := range r.Ways {
		ratio, best, lbCPU := "", "", ""
		if x.Ratio != 0 {
			ratio, best = fmt.Sprintf("%.2f", x.Ratio), fmt.Sprintf("%.2f", x.BestRatio)
		}
		if x.balancerCPU != nil {
			lbCPU = fmt.Sprintf("%.2f s/GB", x.BalancerCPUPerGB)
		}
		fmt.Fprintf(tw, "%s\t%.0f MB/s\t%s\t%.0f MB/s\t%s\t%.0f\t%s\t%.2f s/GB\t\n",
			x.Name, x.Best, best, x.MBps, ratio, x.All, lbCPU, x.NodeCPUPerGB)
	}
	tw.Flush()
	met := "met"
	if !r.Met {
		met = "NOT met"
	}
	fmt.Fprintf(w, "target: %s: %s\n", r.Target, met)
}
