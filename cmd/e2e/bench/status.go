package main

import (
	"fmt"
	"sort"
)

func init() { register(section{name: "status", order: 40, run: (*bench).statusLatency}) }

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
