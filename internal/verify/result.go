package verify

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Result is one check's outcome.
type Result struct {
	Phase    string  `json:"phase"`
	Check    string  `json:"check"`
	Pass     bool    `json:"pass"`
	Evidence string  `json:"evidence"`
	Hint     string  `json:"hint,omitempty"`
	Seconds  float64 `json:"seconds"`
}

func (r Result) String() string {
	s := fmt.Sprintf("%s phase %s %s: %s", map[bool]string{true: "PASS", false: "FAIL"}[r.Pass], r.Phase, r.Check, r.Evidence)
	if !r.Pass && r.Hint != "" {
		s += " (hint: " + r.Hint + ")"
	}
	return s
}

// check runs fn and turns its outcome into a Result.
func check(ctx context.Context, phase, name, hint string, fn func(ctx context.Context) (string, error)) Result {
	if err := ctx.Err(); err != nil {
		// An earlier check used up the time: this one says so rather than fail with the
		// deadline it never had a chance to meet.
		return Result{Phase: phase, Check: name, Evidence: "not checked: the time ran out before it started (" + err.Error() + ")"}
	}
	start := time.Now()
	evidence, err := fn(ctx)
	r := Result{Phase: phase, Check: name, Pass: err == nil, Evidence: evidence, Seconds: time.Since(start).Seconds()}
	if err != nil {
		r.Evidence = err.Error()
		r.Hint = hint
	}
	return r
}

// poll calls fn until it reports done or ctx ends, and then returns fn's last word: a check
// that times out says what it last saw, not just "timeout".
func poll(ctx context.Context, interval time.Duration, fn func() (done bool, seen string, err error)) (string, error) {
	var seen string
	var fnErr error
	err := wait.PollUntilContextCancel(ctx, interval, true, func(context.Context) (bool, error) {
		done, s, err := fn()
		// A try the deadline cut short saw only the deadline ("rate: Wait(n=1) would exceed
		// context deadline"): the try before it says what the check was waiting for.
		if done || err != nil || ctx.Err() == nil || seen == "" {
			seen = s
		}
		fnErr = err
		return done, err
	})
	if err != nil && fnErr == nil { // ctx ended
		return seen, fmt.Errorf("%w; last seen: %s", err, seen)
	}
	return seen, err
}
