// Command bench measures chunked-uploader against baselines taken in the same run on the
// same disk, and prints a table of figures and ratios (also written as JSON). It is made of
// sections, each in its own file, that can run alone (-only, BENCH_ONLY in make bench):
//
//   - ingest: one 50 MiB part PUT vs dd conv=fdatasync of the same bytes, one stream of
//     50 MiB parts for 1 GiB vs dd of each part in sequence, 4 parts in parallel vs 4
//     parallel dd, the same PUT with staging on tmpfs (the floor of the work that is not
//     the disk's), the same parts sent to a bare server that only hashes them (the
//     receive-and-hash floor, see sink.go) against dd and against the host, and host RSS
//     with 8 parts in flight;
//   - delivery: delivery of a 2 GiB upload to the local backend vs cat of the staged parts
//     and sync, and the peak RSS of the host and of the plugin (VmHWM from /proc);
//   - s3: delivery of the same upload to S3 vs a direct multipart upload with the AWS SDK
//     (when TEST_S3_* point at an S3 server, as scripts/test-services.sh env sets them);
//   - status: init and status latency for an upload of 10,000 parts.
//
// Run it with `make bench` (it builds bin/ first). Machines are noisy: each ratio is the
// median over rounds in which the measurement and its baseline alternate.
//
// To add a section, add a file that calls register from an init function.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// section is one independent part of the bench.
type section struct {
	name  string
	order int // sections run in ascending order
	run   func(*bench) error
}

var sections []section

// register adds a section; call it from an init function of the section's file.
func register(s section) { sections = append(sections, s) }

func main() {
	if addr := os.Getenv(sinkEnv); addr != "" {
		runSink(addr)
	}
	bin := flag.String("bin", "bin", "directory with chunked-uploader and its plugins")
	dir := flag.String("dir", "", "work directory on the disk to measure (default: bench-work/ in the current directory)")
	out := flag.String("out", "bench-results.json", "JSON results file")
	deliveryMiB := flag.Int64("delivery-mib", 2048, "size of the delivery benchmark upload, MiB")
	rounds := flag.Int("rounds", 31, "rounds of each ingest measurement alternating with its baseline (the 1 GiB stream runs a third as many)")
	only := flag.String("only", "", "comma-separated sections to run (default: all): "+strings.Join(sectionNames(), ", "))
	flag.Parse()
	if *dir == "" {
		*dir = "bench-work"
	}
	selected, err := selectSections(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	b := &bench{bin: abs(*bin), dir: abs(*dir), rounds: max(*rounds, 1), deliverySize: *deliveryMiB << 20}

	// An interrupted run still stops its servers and unmounts what it mounted.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		b.cleanup()
		os.Exit(1)
	}()
	if err := b.run(selected); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		b.print(os.Stdout)
		os.Exit(1)
	}
	b.print(os.Stdout)
	if err := b.writeJSON(*out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func sectionNames() []string {
	sortSections()
	var names []string
	for _, s := range sections {
		names = append(names, s.name)
	}
	return names
}

func sortSections() {
	sort.SliceStable(sections, func(i, j int) bool { return sections[i].order < sections[j].order })
}

// selectSections returns the sections named in the comma-separated list only, in run order
// (all of them for an empty list).
func selectSections(only string) ([]section, error) {
	sortSections()
	if strings.TrimSpace(only) == "" {
		return sections, nil
	}
	want := map[string]bool{}
	for _, name := range strings.Split(only, ",") {
		if name = strings.TrimSpace(name); name != "" {
			want[name] = true
		}
	}
	var out []section
	for _, s := range sections {
		if want[s.name] {
			out = append(out, s)
			delete(want, s.name)
		}
	}
	if len(want) > 0 {
		var unknown []string
		for name := range want {
			unknown = append(unknown, name)
		}
		sort.Strings(unknown)
		return nil, fmt.Errorf("unknown section %s (sections: %s)", strings.Join(unknown, ", "), strings.Join(sectionNames(), ", "))
	}
	return out, nil
}
