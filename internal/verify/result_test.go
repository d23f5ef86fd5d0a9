package verify

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A check that times out names what it last saw with time left, not the error of the try
// the deadline cut short.
func TestPollLastSeenBeforeTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := poll(ctx, 10*time.Millisecond, func() (bool, string, error) {
		if ctx.Err() != nil {
			return false, "list nodes: rate: Wait(n=1) would exceed context deadline", nil
		}
		time.Sleep(20 * time.Millisecond) // so the deadline falls inside a try
		if ctx.Err() != nil {
			return false, "list nodes: rate: Wait(n=1) would exceed context deadline", nil
		}
		return false, "probes not running yet: [probe on node-1 (Pending)]", nil
	})
	if err == nil || !strings.Contains(err.Error(), "last seen: probes not running yet") {
		t.Fatalf("poll: %v; want the last observation made before the deadline", err)
	}
}

func TestPollDone(t *testing.T) {
	seen, err := poll(context.Background(), time.Millisecond, func() (bool, string, error) {
		return true, "3 nodes", nil
	})
	if err != nil || seen != "3 nodes" {
		t.Fatalf("poll: %q, %v", seen, err)
	}
}

// A check whose time an earlier one used up says it was not checked, with no hint to chase.
func TestCheckAfterTheDeadlineSaysNotChecked(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	r := check(ctx, "3", "scheduler-lease", "check the scheduler", func(context.Context) (string, error) {
		called = true
		return "", nil
	})
	if called || r.Pass || !strings.HasPrefix(r.Evidence, "not checked") || r.Hint != "" {
		t.Errorf("check after the deadline: called %v, %+v", called, r)
	}
}
