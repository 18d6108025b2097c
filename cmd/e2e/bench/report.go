package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"
)

func (b *bench) print(w io.Writer) {
	fmt.Fprintf(w, "\n%-52s %12s %12s %8s  %-28s %s\n", "measurement", "value", "baseline", "ratio", "target", "note")
	for _, r := range b.results {
		base, ratio := "", ""
		if r.Baseline != 0 {
			base = fmt.Sprintf("%.2f", r.Baseline)
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		target := r.Target
		if r.Met != nil {
			if *r.Met {
				target += " (met)"
			} else {
				target += " (MISSED)"
			}
		}
		fmt.Fprintf(w, "%-52s %8.2f %-3s %12s %8s  %-28s %s\n", r.Name, r.Value, r.Unit, base, ratio, target, r.Note)
	}
}

func (b *bench) writeJSON(path string) error {
	host, _ := os.Hostname()
	data, err := json.MarshalIndent(map[string]any{
		"date": time.Now().UTC().Format(time.RFC3339), "host": host, "cpus": runtime.NumCPU(),
		"go": runtime.Version(), "results": b.results,
	}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
