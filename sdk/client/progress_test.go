package client

import "testing"

// TestTrackerCountsRetriesOnce: bytes re-sent by a retry and bytes read by a failed attempt
// that is still being closed never count twice.
func TestTrackerCountsRetriesOnce(t *testing.T) {
	t.Parallel()
	var last Progress
	tr := newTracker(func(p Progress) { last = p })
	tr.update(func(p *Progress) { *p = Progress{Phase: PhaseUploading, TotalBytes: 300, TotalParts: 3} })
	steps := []struct {
		do   func()
		want int64
	}{
		{func() { tr.sent(0, 60) }, 60},
		{func() { tr.sent(0, 100) }, 100},
		{func() { tr.sent(0, 30) }, 100}, // retry of part 0: below the earlier attempt
		{func() { tr.sent(0, 110) }, 110},
		{func() { tr.partDone(0, 120) }, 120},
		{func() { tr.sent(0, 120) }, 120}, // a late read of the failed attempt
		{func() { tr.sent(1, 50) }, 170},
		{func() { tr.partDone(1, 120) }, 240},
		{func() { tr.partDone(2, 60) }, 300},
	}
	for i, s := range steps {
		s.do()
		if got := tr.p.BytesUploaded; got != s.want {
			t.Fatalf("step %d: %d bytes, want %d", i, got, s.want)
		}
	}
	if last.BytesUploaded != 300 || last.PartsDone != 3 {
		t.Errorf("last report %+v, want all bytes and parts", last)
	}
}
