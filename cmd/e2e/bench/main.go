// Command bench measures chunked-uploader against baselines taken in the same run on the
// same disk, and prints a table of figures and ratios (also written as JSON):
//
//   - ingest of 50 MiB parts, one stream, vs dd conv=fdatasync of the same bytes;
//   - ingest with 4 parts in parallel, vs 4 parallel dd;
//   - delivery of a 2 GiB upload to the local backend vs cat of the staged parts + sync;
//   - delivery of the same upload to S3 vs a direct multipart upload with the AWS SDK
//     (when TEST_S3_* point at an S3 server, as scripts/test-services.sh env sets them);
//   - peak RSS of the host and of the plugin (VmHWM from /proc);
//   - status latency for an upload of 10,000 parts.
//
// Run it with `make bench` (it builds bin/ first). Machines are noisy: each ingest
// figure is the median of interleaved rounds of the measurement and its baseline.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	bin := flag.String("bin", "bin", "directory with chunked-uploader and its plugins")
	dir := flag.String("dir", "", "work directory on the disk to measure (default: bench-work/ in the current directory)")
	out := flag.String("out", "bench-results.json", "JSON results file")
	deliveryMiB := flag.Int64("delivery-mib", 2048, "size of the delivery benchmark upload, MiB")
	rounds := flag.Int("rounds", 3, "interleaved rounds of each ingest measurement")
	flag.Parse()
	if *dir == "" {
		*dir = "bench-work"
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	b := &bench{bin: abs(*bin), dir: abs(*dir), rounds: *rounds, deliverySize: *deliveryMiB << 20}
	if err := b.run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		b.stop()
		os.Exit(1)
	}
	b.print(os.Stdout)
	if err := b.writeJSON(*out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
