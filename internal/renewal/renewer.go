package renewal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/pki"
)

// DefaultShare is the share of a certificate's lifetime left at which it is renewed: a third,
// so a one-year certificate is renewed four months before it expires and a machine that was
// off for months still comes back with valid certificates.
const DefaultShare = 1.0 / 3

// Renewer renews a master's certificates.
type Renewer struct {
	// Root prefixes every path (for tests); "/" on a machine.
	Root  string
	Items []Item
	// Share: renew when less than this share of the lifetime is left (DefaultShare if zero).
	Share float64
	// Lifetime of renewed certificates; zero keeps each certificate's own lifetime.
	Lifetime time.Duration
	// Restart restarts a component; Healthy returns nil once the component runs with the
	// certificates now on disk (the renewal waits up to HealthTimeout for it).
	Restart       func(ctx context.Context, component string) error
	Healthy       func(ctx context.Context, component string, since time.Time) error
	HealthTimeout time.Duration
	// StateDir, if set, keeps a marker per component whose renewed files are written but which
	// has not been seen healthy on them yet: an agent that stops in between (crash, upgrade)
	// restarts those components first when it starts again, instead of leaving them on
	// certificates that only their memory holds.
	StateDir string
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Log is told about every step.
	Log func(format string, args ...any)
}

// Outcome is what one renewal pass did with one component's certificates.
type Outcome struct {
	Component string // empty for certificates nobody needs restarting for
	Renewed   []string
	// Err is set when the renewal failed; the old certificates are then in place.
	Err error
	// Window is how long the component was restarting (restart to healthy).
	Window time.Duration
}

func (r *Renewer) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Renewer) logf(format string, args ...any) {
	if r.Log != nil {
		r.Log(format, args...)
	}
}

func (r *Renewer) share() float64 {
	if r.Share == 0 {
		return DefaultShare
	}
	return r.Share
}

// NextDue is the earliest time one of certs becomes due (zero for none).
func (r *Renewer) NextDue(certs []Cert) time.Time {
	var next time.Time
	for _, c := range certs {
		if at := c.RenewAt(r.share()); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}

// Read returns every managed certificate as it is on disk.
func (r *Renewer) Read() ([]Cert, error) {
	var out []Cert
	var errs []error
	for _, it := range r.Items {
		c, err := it.Read(r.Root)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// RenewDue renews every certificate that is due, one component at a time, and returns what it
// did per component. A component whose renewal fails keeps its old certificates; the others
// still go ahead.
func (r *Renewer) RenewDue(ctx context.Context) ([]Outcome, error) {
	certs, err := r.Read()
	if err != nil {
		return nil, err
	}
	share := r.share()
	var out []Outcome
	for _, comp := range r.pending() {
		start := r.now()
		o := Outcome{Component: comp}
		if err := r.restartHealthy(ctx, comp, start); err != nil {
			o.Err = fmt.Errorf("%s: restart left pending by an earlier run: %w", comp, err)
		} else {
			r.done(comp)
			o.Window = r.now().Sub(start)
			r.logf("%s restarted on the certificates an earlier run renewed; healthy in %v", comp, o.Window.Round(time.Millisecond))
		}
		out = append(out, o)
	}
	now := r.now()
	return append(out, r.reissue(ctx, certs, func(c Cert) bool { return c.Due(now, share) })...), nil
}

// Reissue re-issues every certificate pick selects, whether due or not, from the CA on the
// machine, one component at a time with the same restart, health check and rollback as a
// renewal: what a CA rotation does to move every leaf to the new CA.
func (r *Renewer) Reissue(ctx context.Context, pick func(Cert) bool) ([]Outcome, error) {
	certs, err := r.Read()
	if err != nil {
		return nil, err
	}
	return r.reissue(ctx, certs, pick), nil
}

func (r *Renewer) reissue(ctx context.Context, certs []Cert, pick func(Cert) bool) []Outcome {
	var out []Outcome
	due := map[string][]Cert{}
	for _, c := range certs {
		if pick(c) {
			due[c.Component] = append(due[c.Component], c)
		}
	}
	// Certificates that need no restart first: they are in use as soon as they are written.
	for _, comp := range append([]string{""}, RestartOrder...) {
		if len(due[comp]) == 0 {
			continue
		}
		o := r.renew(ctx, comp, due[comp])
		out = append(out, o)
		if ctx.Err() != nil {
			break
		}
	}
	return out
}

// RestartHealthy restarts a component and waits until it is healthy (HealthTimeout).
func (r *Renewer) RestartHealthy(ctx context.Context, comp string) (time.Duration, error) {
	start := r.now()
	err := r.restartHealthy(ctx, comp, start)
	return r.now().Sub(start), err
}

// renew re-issues one component's due certificates, writes them, restarts the component and
// checks it; on any failure the old files go back.
func (r *Renewer) renew(ctx context.Context, comp string, certs []Cert) Outcome {
	o := Outcome{Component: comp}
	now := r.now()
	fresh := make([][]byte, len(certs))
	for i, c := range certs {
		caCert, caKey := caFiles(r.Root, c.CA)
		caPEM, err := os.ReadFile(caCert)
		if err == nil {
			var keyPEM []byte
			if keyPEM, err = os.ReadFile(caKey); err == nil {
				life := r.Lifetime
				if life == 0 {
					life = pki.Lifetime(c.Cert)
				}
				var certPEM []byte
				if certPEM, err = pki.Reissue(c.PEM, caPEM, keyPEM, now, life); err == nil {
					fresh[i], err = c.withCert(certPEM)
				}
			}
		}
		if err != nil {
			// Nothing is written yet: the old certificates stay as they are.
			o.Err = fmt.Errorf("renew %s with the CA %s: %w (the old certificate, valid until %s, stays)", c.Name, c.CA, err, c.Cert.NotAfter.Format(time.RFC3339))
			return o
		}
	}
	if comp != "" {
		if err := r.mark(comp); err != nil {
			o.Err = fmt.Errorf("note the pending restart of %s: %w (nothing was written)", comp, err)
			return o
		}
	}
	if err := r.write(certs, fresh); err != nil {
		o.Err = fmt.Errorf("write the renewed certificates: %w", err)
		r.restore(certs)
		r.done(comp) // not restarted, and its files are the old ones again
		return o
	}
	for _, c := range certs {
		o.Renewed = append(o.Renewed, c.Name)
	}
	r.logf("renewed %s", strings.Join(o.Renewed, ", "))
	if comp == "" {
		return o
	}
	start := r.now()
	if err := r.restartHealthy(ctx, comp, start); err != nil {
		o.Err = fmt.Errorf("%s with the renewed %s: %w; the old certificates are back", comp, strings.Join(o.Renewed, ", "), err)
		o.Renewed = nil
		r.restore(certs)
		if err := r.restartHealthy(ctx, comp, r.now()); err != nil {
			o.Err = fmt.Errorf("%w, but %s is not healthy on them either: %v", o.Err, comp, err)
			return o // the marker stays: the next start restarts it again
		}
		r.done(comp)
		return o
	}
	r.done(comp)
	o.Window = r.now().Sub(start)
	r.logf("%s restarted and healthy in %v", comp, o.Window.Round(time.Millisecond))
	return o
}

// mark, done and pending keep StateDir's markers.
func (r *Renewer) mark(comp string) error {
	if r.StateDir == "" {
		return nil
	}
	if err := fsutil.MkdirAll(r.StateDir, 0o700); err != nil {
		return err
	}
	return fsutil.ReplaceFile(filepath.Join(r.StateDir, "restart-"+comp), []byte(r.now().UTC().Format(time.RFC3339)+"\n"), 0o600)
}

func (r *Renewer) done(comp string) {
	if r.StateDir != "" {
		os.Remove(filepath.Join(r.StateDir, "restart-"+comp))
	}
}

func (r *Renewer) pending() []string {
	if r.StateDir == "" {
		return nil
	}
	var out []string
	for _, comp := range RestartOrder {
		if _, err := os.Stat(filepath.Join(r.StateDir, "restart-"+comp)); err == nil {
			out = append(out, comp)
		}
	}
	return out
}

func (r *Renewer) restartHealthy(ctx context.Context, comp string, since time.Time) error {
	if err := r.Restart(ctx, comp); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	timeout := r.HealthTimeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	var last error
	// Polling the component's health.
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		last = r.Healthy(ctx, comp, since)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("not healthy after %v: %w", timeout, last)
	}
	return nil
}

// write puts every new file in place, atomically each, keeping each file's mode.
func (r *Renewer) write(certs []Cert, fresh [][]byte) error {
	for i, c := range certs {
		if err := replaceKeepingMode(c.File(r.Root), fresh[i]); err != nil {
			return err
		}
	}
	return nil
}

// restore puts the old files back.
func (r *Renewer) restore(certs []Cert) {
	for _, c := range certs {
		if err := replaceKeepingMode(c.File(r.Root), c.Raw); err != nil {
			r.logf("restore %s: %v", c.File(r.Root), err)
		}
	}
}

func replaceKeepingMode(path string, data []byte) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return fsutil.ReplaceFile(path, data, fi.Mode().Perm())
}
