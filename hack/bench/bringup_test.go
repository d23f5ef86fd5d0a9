package main

import (
	"testing"
	"time"
)

// The summary's medians and spreads: the middle run (the mean of the two middle ones for an
// even count), lowest to highest, over the runs that reached the milestone, with the others
// counted as missed.
func TestStats(t *testing.T) {
	tl := func(s ...int) timeline {
		t := timeline{at: map[string]time.Duration{}}
		if len(s) > 0 {
			t.at["6"] = time.Duration(s[0]) * time.Second
		}
		return t
	}
	for _, c := range []struct {
		runs []timeline
		want string
	}{
		{nil, "-"},
		{[]timeline{tl(300)}, "300 s"},
		{[]timeline{tl(400), tl(300), tl(350)}, "350 s (300-400)"},
		{[]timeline{tl(400), tl(300), tl(350), tl(500)}, "375 s (300-500)"},
		{[]timeline{tl(400), tl(), tl(300)}, "350 s (300-400) 1 missed"},
	} {
		if got := stats(c.runs, "6").String(); got != c.want {
			t.Errorf("stats of %v = %q, want %q", c.runs, got, c.want)
		}
	}
}
