package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

type results struct {
	Date          string           `json:"date"`
	Host          string           `json:"host"`
	CPUs          int              `json:"cpus"`
	Go            string           `json:"go"`
	SizeBytes     int64            `json:"size_bytes"`
	ChunkBytes    int64            `json:"chunk_bytes"`
	Parallel      int              `json:"parts_in_flight"`
	Throttle      float64          `json:"throttle_fraction"`
	CachesDropped bool             `json:"page_cache_dropped_before_each"`
	Backends      []*backendResult `json:"backends"`
	Clients       []*clientResult  `json:"clients,omitempty"`
}

type backendResult struct {
	Backend       string      `json:"backend"`
	DeliveryAlone *alone      `json:"delivery_alone"`
	S3Floor       float64     `json:"s3_complete_floor_seconds,omitempty"`
	ThrottleMBps  float64     `json:"throttle_mb_per_s"`
	Throttled     *sendResult `json:"throttled"` // (b)
	// (b2), when the host's own rate in (a) is below (b)'s: the client at the throttle
	// fraction of that rate.
	HostThrottleMBps float64     `json:"host_throttle_mb_per_s,omitempty"`
	HostThrottled    *sendResult `json:"host_throttled,omitempty"`
	PartsAlone       *sendResult `json:"parts_alone"` // the whole-only host's ingest
	Full             *sendResult `json:"full_speed"`  // (a)
	// Baseline is the larger of parts alone and delivery alone (its total, commit included).
	Baseline float64  `json:"baseline_seconds"`
	Ratio    float64  `json:"full_total_over_baseline"`
	Targets  []target `json:"targets"`
	Error    string   `json:"error,omitempty"`
}

type target struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	Unit  string  `json:"unit"`
	Met   bool    `json:"met"`
}

const mib = 1 << 20

// evaluate checks the targets: in (b) (and (b2)) complete within 3 s of the last part
// (S3: the CompleteMultipartUpload floor + 1 s) and staging at most (parts in flight + 4) x
// chunk; in (a) total at most 1.2 x the larger baseline; host RSS within 64 MiB.
func (r *backendResult) evaluate(parallel int, chunk int64) {
	r.Baseline = max(r.PartsAlone.PartsSeconds, r.DeliveryAlone.TotalSeconds)
	r.Ratio = r.Full.TotalSeconds / r.Baseline
	after := 3.0
	if r.Backend == "s3" {
		after = r.S3Floor + 1
	}
	staging := float64(int64(parallel+4)*chunk) / mib
	rss := max(r.Full.Host.PeakRSS, r.Throttled.Host.PeakRSS)
	r.Targets = []target{
		{Name: "(b) complete after the last part", Value: r.Throttled.AfterLastPart, Limit: after, Unit: "s"},
		{Name: "(b) staging peak", Value: float64(r.Throttled.StagingPeak) / mib, Limit: staging, Unit: "MiB"},
	}
	if b2 := r.HostThrottled; b2 != nil {
		rss = max(rss, b2.Host.PeakRSS)
		r.Targets = append(r.Targets,
			target{Name: "(b2) complete after the last part", Value: b2.AfterLastPart, Limit: after, Unit: "s"},
			target{Name: "(b2) staging peak", Value: float64(b2.StagingPeak) / mib, Limit: staging, Unit: "MiB"})
	}
	r.Targets = append(r.Targets,
		target{Name: "(a) total / larger baseline", Value: r.Ratio, Limit: 1.2, Unit: "x"},
		target{Name: "host peak RSS, every upload", Value: float64(rss) / mib, Limit: 64, Unit: "MiB"})
	for i := range r.Targets {
		r.Targets[i].Met = r.Targets[i].Value <= r.Targets[i].Limit
	}
}

func load(l [3]float64) string { return fmt.Sprintf("%.1f", l[0]) }

func (res *results) print(w io.Writer) {
	fmt.Fprintf(w, "\nPart-wise delivery: a file of %d MiB in %d MiB parts, %d in flight; page cache dropped before each: %v\n",
		res.SizeBytes/mib, res.ChunkBytes/mib, res.Parallel, res.CachesDropped)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "backend\tmeasurement\ttotal\tafter last part\tclient\t429s\tstaging peak\thost RSS\tplugin RSS\thost+plugin CPU\tload\t")
	mbps := func(size int64, s float64) string { return fmt.Sprintf("%.0f MB/s", float64(size)/1e6/s) }
	for _, r := range res.Backends {
		if a := r.DeliveryAlone; a != nil {
			floor := ""
			if r.Backend == "s3" {
				floor = fmt.Sprintf("commit (floor) %.2f s", a.CommitSeconds)
			} else {
				floor = fmt.Sprintf("commit %.2f s", a.CommitSeconds)
			}
			fmt.Fprintf(tw, "%s\tdelivery alone\t%.2f s\t%s\t%s\t\t\t\t\t\t%s-%s\t\n", r.Backend, a.TotalSeconds, floor,
				mbps(res.SizeBytes, a.PartsSeconds), load(a.LoadStart), load(a.LoadEnd))
		}
		row := func(label string, s *sendResult) {
			if s == nil {
				return
			}
			after := ""
			if s.CompleteStatus != 0 {
				after = fmt.Sprintf("%.2f s (%d; all delivered at +%.1f s)", s.AfterLastPart, s.CompleteStatus, s.AllDelivered)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f s\t%s\t%.0f MB/s\t%d\t%.0f MiB\t%.1f MiB\t%.1f MiB\t%.1f s\t%s-%s\t\n", r.Backend, label, s.TotalSeconds, after,
				s.ClientMBps, s.Refused, float64(s.StagingPeak)/mib, float64(s.Host.PeakRSS)/mib, float64(s.Plugin.PeakRSS)/mib,
				s.Host.CPU+s.Plugin.CPU, load(s.LoadStart), load(s.LoadEnd))
		}
		row("parts alone (whole-only host)", r.PartsAlone)
		row("(a) full speed", r.Full)
		row(fmt.Sprintf("(b) throttled to %.0f MB/s", r.ThrottleMBps), r.Throttled)
		row(fmt.Sprintf("(b2) throttled to %.0f MB/s", r.HostThrottleMBps), r.HostThrottled)
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\tFAILED: %s\t\t\t\t\t\t\t\t\t\t\n", r.Backend, firstLine(r.Error))
		}
	}
	tw.Flush()

	fmt.Fprintf(w, "\nTargets\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "backend\ttarget\tvalue\tlimit\t\t")
	for _, r := range res.Backends {
		for _, t := range r.Targets {
			met := "met"
			if !t.Met {
				met = "MISSED"
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f %s\t%.2f %s\t%s\t\n", r.Backend, t.Name, t.Value, t.Unit, t.Limit, t.Unit, met)
		}
		if r.Full != nil {
			fmt.Fprintf(tw, "%s\t  (a) %.2f s; parts alone %.2f s, delivery alone %.2f s\t\t\t\t\n", r.Backend, r.Full.TotalSeconds,
				r.PartsAlone.PartsSeconds, r.DeliveryAlone.TotalSeconds)
		}
	}
	tw.Flush()

	if len(res.Clients) > 0 {
		fmt.Fprintf(w, "\nClients: a file of %d MiB, host with the default COMPLETE_WAIT_SECONDS\n", res.SizeBytes/mib)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "backend\tclient\tcomplete\tafter last part\ttotal\tfinal_path\tload\t")
		for _, c := range res.Clients {
			if c.Error != "" {
				fmt.Fprintf(tw, "%s\t%s\tFAILED: %s\t\t\t\t\t\n", c.Backend, c.Client, firstLine(c.Error))
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f s\t%.1f s\t%s\t%s-%s\t\n", c.Backend, c.Client, c.CompleteStatus, c.AfterLastPart, c.TotalSeconds,
				c.FinalPath, load(c.LoadStart), load(c.LoadEnd))
		}
		tw.Flush()
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
