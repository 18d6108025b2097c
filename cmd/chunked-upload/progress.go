package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chunked-uploader/chunked-uploader/sdk/client"
)

// Progress output limits.
const (
	redrawInterval = 100 * time.Millisecond // terminal: at most 10 redraws a second
	plainStep      = 5                      // plain: a line every 5 percent ...
	plainInterval  = 10 * time.Second       // ... or every 10 seconds
	barWidth       = 24
)

// progressView renders client.Progress reports on stderr: on a terminal a single line that is
// redrawn, otherwise plain lines. It is called from the client's serialised callback.
type progressView struct {
	w   io.Writer
	tty bool
	now func() time.Time

	phase     client.Phase
	start     time.Time // when the current phase started
	base      int64     // bytes counted at the start of the phase (resumed parts)
	lastDraw  time.Time
	lastPct   int  // plain: the last percentage printed
	drawn     bool // terminal: a progress line is on screen
	lastDeliv int
}

func newProgressView(w io.Writer, tty bool) *progressView {
	return &progressView{w: w, tty: tty, now: time.Now, lastPct: -1, lastDeliv: -1}
}

// update shows p if enough changed since the last output.
func (v *progressView) update(p client.Progress) {
	now := v.now()
	changed := p.Phase != v.phase
	if changed {
		v.phase, v.start, v.lastPct = p.Phase, now, -1
		v.base = p.BytesUploaded
	}
	switch p.Phase {
	case client.PhaseHashing:
		v.show(now, changed, percent(p.BytesHashed, p.TotalBytes), p.BytesHashed, p.TotalBytes, "hashing  ")
	case client.PhaseUploading:
		v.show(now, changed, percent(p.BytesUploaded, p.TotalBytes), p.BytesUploaded, p.TotalBytes, "uploading")
	case client.PhaseFinalizing:
		if changed || p.DeliveryPercent != v.lastDeliv {
			v.lastDeliv = p.DeliveryPercent
			v.line(fmt.Sprintf("finalizing: the server delivers the file to storage, %d%%", p.DeliveryPercent), changed)
		}
	case client.PhaseComplete:
		v.done()
	}
}

// show draws a byte progress line when the rate limits allow it.
func (v *progressView) show(now time.Time, force bool, pct int, done, total int64, label string) {
	final := done == total
	if v.tty {
		if !force && !final && now.Sub(v.lastDraw) < redrawInterval {
			return
		}
	} else if !force && pct < v.lastPct+plainStep && now.Sub(v.lastDraw) < plainInterval && !(final && pct != v.lastPct) {
		return
	}
	v.lastPct = pct
	line := fmt.Sprintf("%s %3d%%  %s / %s%s", label, pct, humanBytes(done), humanBytes(total), v.rate(now, done, total))
	if v.tty {
		filled := pct * barWidth / 100
		line = fmt.Sprintf("[%s%s] %s", strings.Repeat("#", filled), strings.Repeat("-", barWidth-filled), line)
	}
	v.line(line, false)
}

// rate is "  12.3 MiB/s  ETA 5s" from the bytes moved since the phase started.
func (v *progressView) rate(now time.Time, done, total int64) string {
	el := now.Sub(v.start)
	moved := done - v.base
	if el < 500*time.Millisecond || moved <= 0 {
		return ""
	}
	perSec := float64(moved) / el.Seconds()
	eta := time.Duration(float64(total-done) / perSec * float64(time.Second))
	return fmt.Sprintf("  %s/s  ETA %s", humanBytes(int64(perSec)), humanDuration(eta))
}

// line writes s: on a terminal it replaces the current line, or keeps it and starts a new
// one when keep is set.
func (v *progressView) line(s string, keep bool) {
	v.lastDraw = v.now()
	if !v.tty {
		fmt.Fprintln(v.w, s)
		return
	}
	if keep && v.drawn {
		fmt.Fprint(v.w, "\n")
	}
	fmt.Fprint(v.w, "\r\x1b[K"+s)
	v.drawn = true
}

// done ends a terminal progress line, so that what follows starts on a line of its own.
func (v *progressView) done() {
	if v.tty && v.drawn {
		fmt.Fprint(v.w, "\n")
		v.drawn = false
	}
}

func percent(n, total int64) int {
	if total <= 0 {
		return 100
	}
	return int(n * 100 / total)
}
