package main

import (
	"fmt"
	"os"
)

func init() { register(section{name: "delivery", order: 20, run: (*bench).delivery}) }

// delivery uploads deliverySize bytes to a local-backend host, 4 parts at once, and times
// complete after the last part: with part-wise delivery the parts are in the backend by
// then but for those still in flight, so complete does not grow with the file. It reports
// the peak RSS of the host and the plugin. (cmd/e2e/benchdelivery measures delivery at
// 10 GiB on every backend against the backend's own speed.)
func (b *bench) delivery() error {
	local, err := b.start("local", nil)
	if err != nil {
		return err
	}
	final, err := b.completeAfterUpload(local, "big/local.bin", "local")
	if err != nil {
		return fmt.Errorf("local delivery: %w", err)
	}
	if st, err := os.Stat(final); err != nil || st.Size() != b.deliverySize {
		return fmt.Errorf("delivered file %s: %v", final, err)
	}
	os.Remove(final)
	hostRSS, pluginRSS := local.peakRSS()
	met := hostRSS <= 64<<20
	b.add(result{Name: "host peak RSS (local delivery run)", Value: mib(hostRSS), Unit: "MiB", Target: "<= 64 MiB", Met: &met,
		Note: "4 parts in flight, delivered as they arrive"})
	b.add(result{Name: "local plugin peak RSS", Value: mib(pluginRSS), Unit: "MiB"})
	return nil
}

// completeAfterUpload uploads deliverySize bytes (the part data repeated) to s, 4 parts at
// once, then times complete, reports it and returns the final path.
func (b *bench) completeAfterUpload(s *server, name, backend string) (string, error) {
	up, err := s.init(name, b.deliverySize)
	if err != nil {
		return "", err
	}
	sending, err := timed(func() error {
		return parallel(up.TotalParts, 4, func(n int) error {
			size := min(partSize, b.deliverySize-int64(n)*partSize)
			return s.put(up, n, b.part[:size])
		})
	})
	if err != nil {
		return "", err
	}
	var final string
	wait, err := timed(func() error { var err error; final, err = s.complete(up.FileID); return err })
	if err != nil {
		return "", err
	}
	b.add(result{Name: fmt.Sprintf("complete after the last part, %d MiB to %s", b.deliverySize>>20, backend),
		Value: wait.Seconds(), Unit: "s",
		Note: fmt.Sprintf("sending the %d parts (4 at once) took %.1f s; delivery runs while they arrive", up.TotalParts, sending.Seconds())})
	return final, nil
}
