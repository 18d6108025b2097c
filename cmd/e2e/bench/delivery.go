package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

func init() { register(section{name: "delivery", order: 20, run: (*bench).delivery}) }

// delivery uploads deliverySize bytes to a local-backend host, times their delivery against
// cat of the staged parts + sync, and reports the peak RSS of the host and the plugin.
func (b *bench) delivery() error {
	local, err := b.start("local", nil)
	if err != nil {
		return err
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
	b.add(result{Name: "host peak RSS (local delivery run)", Value: mib(hostRSS), Unit: "MiB", Target: "<= 64 MiB", Met: &met,
		Note: "4 parts in flight, then the delivery"})
	b.add(result{Name: "local plugin peak RSS", Value: mib(pluginRSS), Unit: "MiB"})
	return nil
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
