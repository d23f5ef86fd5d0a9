package main

import (
	"os"
	"testing"
	"time"
)

// A server's CPU time is read from /proc: this process's grows as it works.
func TestCPUTime(t *testing.T) {
	before := cpuTime(os.Getpid())
	for start := time.Now(); cpuTime(os.Getpid())-before < 50*time.Millisecond; {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("cpuTime stayed at %v after 10 s of work", cpuTime(os.Getpid()))
		}
		for i := range 1_000_000 {
			_ = i * i
		}
	}
	if cpuTime(-1) != 0 {
		t.Error("cpuTime of no process is not 0")
	}
}
