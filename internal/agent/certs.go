package agent

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"kubeup.dev/kubeup/internal/manifests"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/renewal"
)

// CertificatesAnnotation holds, on each machine's Node, the certificates its agent manages or
// watches and when they expire: what `kubeup certs status` reads, with no SSH.
const CertificatesAnnotation = "kubeup.dev/certificates"

// TrustAnnotation holds, on each machine's Node, the key ids (hex, comma-separated) of the CAs
// in the machine's pki/ca.crt: what the master's agent waits on during a CA rotation before it
// moves the API server onto the new CA, so no node is cut off.
const TrustAnnotation = "kubeup.dev/trusted-cas"

// Expiry is one certificate in CertificatesAnnotation.
type Expiry struct {
	Name     string    `json:"name"`
	NotAfter time.Time `json:"notAfter"`
	// Issuer is the issuing CA's key identifier (the certificate's AuthorityKeyId, hex): what
	// tells, with no SSH, whether a machine still uses a certificate from a CA being rotated out.
	Issuer string `json:"issuer,omitempty"`
}

// WarnBefore are the times before expiry at which the agent raises a Warning Event.
var WarnBefore = []time.Duration{30 * 24 * time.Hour, 7 * 24 * time.Hour}

// CertWatch is the agent's certificate loop. On the master it renews what is due (Renewer);
// everywhere it exposes every certificate's expiry as metrics, on its Node, and as Warning
// Events 30 and 7 days before.
type CertWatch struct {
	Machine string
	Root    string
	// Renewer renews the master's certificates; nil on nodes.
	Renewer *renewal.Renewer
	// CARotation are run first on each pass: they take a CA rotation as far as it can go
	// (the master's agent: carotation.Master.Step; every agent: carotation.Kubelet.Step). One
	// that reports busy (a rotation in progress) brings the next pass within RotationPoll.
	CARotation []func(ctx context.Context) (busy bool, err error)
	// Watch are certificates only watched (the kubelet's).
	Watch   []renewal.Item
	Metrics *renewal.Metrics
	// Reporter reports on the console and, with a client, as Events on the Node.
	Reporter *Reporter
	Now      func() time.Time

	published string
	warned    map[string]bool
	busy      bool
}

// RotationPoll is the longest wait between passes while a CA rotation is in progress: the
// master waits on nodes, nodes on the master, and each looks only when it passes.
const RotationPoll = 30 * time.Second

func (w *CertWatch) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Run makes a pass every interval until ctx ends, and sooner when a certificate becomes due
// before then: a renewal must not wait for the next round when the lifetime is short.
func (w *CertWatch) Run(ctx context.Context, interval time.Duration) {
	for {
		certs, _ := w.Pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.wait(certs, interval)): // not a poll: the next pass is when the first certificate is due
		}
	}
}

// minWait keeps a certificate that cannot be renewed (the failure is reported each pass) from
// turning the loop into a busy one.
const minWait = 10 * time.Second

// wait is how long until the next pass: interval, or until the first certificate becomes due.
func (w *CertWatch) wait(certs []renewal.Cert, interval time.Duration) time.Duration {
	if w.busy {
		interval = min(interval, RotationPoll)
	}
	if w.Renewer == nil {
		return interval
	}
	next := w.Renewer.NextDue(certs)
	if next.IsZero() {
		return interval
	}
	return max(min(interval, next.Sub(w.now())), minWait)
}

// Pass renews what is due (master), then reads every certificate and publishes their expiry.
// It returns the certificates and what the renewal did.
func (w *CertWatch) Pass(ctx context.Context) (certs []renewal.Cert, out []renewal.Outcome) {
	w.busy = false
	for _, step := range w.CARotation {
		busy, err := step(ctx)
		if err != nil {
			w.say(ctx, false, "CARotationFailed", err.Error())
		}
		w.busy = w.busy || busy
	}
	if w.Renewer != nil {
		var err error
		out, err = w.Renewer.RenewDue(ctx)
		if err != nil {
			w.say(ctx, false, "CertificateRenewalFailed", err.Error())
		}
		for _, o := range out {
			about := o.Component
			if about == "" {
				about = strings.Join(o.Renewed, ",")
			}
			switch {
			case o.Err != nil:
				w.sayAbout(ctx, false, "CertificateRenewalFailed", about, o.Err.Error())
			case o.Component != "":
				w.sayAbout(ctx, true, "CertificateRenewed", about, fmt.Sprintf("renewed %s; %s healthy on them after %v", strings.Join(o.Renewed, ", "), o.Component, o.Window.Round(time.Second)))
			default:
				w.sayAbout(ctx, true, "CertificateRenewed", about, "renewed "+strings.Join(o.Renewed, ", "))
			}
		}
		if certs, err = w.Renewer.Read(); err != nil {
			w.say(ctx, false, "CertificateUnreadable", err.Error())
		}
	}
	for _, it := range w.Watch {
		c, err := it.Read(w.Root)
		if err != nil {
			if !os.IsNotExist(err) { // the kubelet's serving certificate comes some time after boot
				w.say(ctx, false, "CertificateUnreadable", err.Error())
			}
			continue
		}
		certs = append(certs, c)
	}
	if w.Metrics != nil {
		w.Metrics.Set(w.Machine, certs)
	}
	w.warn(ctx, certs)
	w.publish(ctx, certs)
	return certs, out
}

// Say reports on the console and as an Event on the Node (Warning unless ok).
func (w *CertWatch) Say(ctx context.Context, ok bool, reason, msg string) {
	w.say(ctx, ok, reason, msg)
}

// say reports on the console and as an Event on the Node.
func (w *CertWatch) say(ctx context.Context, ok bool, reason, msg string) {
	w.sayAbout(ctx, ok, reason, "Report", msg)
}

// sayAbout is say for an Event about one thing (Reporter.EventAbout).
func (w *CertWatch) sayAbout(ctx context.Context, ok bool, reason, about, msg string) {
	typ := corev1.EventTypeNormal
	if !ok {
		typ = corev1.EventTypeWarning
	}
	if w.Reporter.Console != nil {
		fmt.Fprintf(w.Reporter.Console, "kubeup: %s: certificates: %s: %s\n", w.Machine, reason, msg)
	}
	w.Reporter.EventAbout(ctx, typ, reason, about, msg)
}

// warn raises one Warning Event per certificate and threshold crossed.
func (w *CertWatch) warn(ctx context.Context, certs []renewal.Cert) {
	if w.warned == nil {
		w.warned = map[string]bool{}
	}
	now := w.now()
	for _, c := range certs {
		left := c.Cert.NotAfter.Sub(now)
		// The nearest threshold crossed, so a certificate found at 5 days left warns once.
		for _, before := range slices.Backward(WarnBefore) {
			if left >= before {
				continue
			}
			key := fmt.Sprintf("%s/%v/%s", c.Name, before, c.Cert.SerialNumber)
			if !w.warned[key] {
				w.warned[key] = true
				w.Reporter.EventAbout(ctx, corev1.EventTypeWarning, "CertificateExpiresSoon", fmt.Sprintf("%s under %d days", c.Name, int(before.Hours()/24)),
					fmt.Sprintf("%s expires at %s (in %s, under %d days)%s", c.Name, c.Cert.NotAfter.Format(time.RFC3339), days(left), int(before.Hours()/24), w.hint()))
			}
			break
		}
	}
}

func (w *CertWatch) hint() string {
	if w.Renewer != nil {
		return ": the agent renews it when a third of its lifetime is left; if this stays, see the agent's Renewal events"
	}
	return ": the kubelet rotates it; if this stays, check the kubelet's log and pending CSRs"
}

func days(d time.Duration) string {
	if d < 0 {
		return "expired"
	}
	if d < 48*time.Hour {
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// publish puts the expiry list on the Node when it changed.
func (w *CertWatch) publish(ctx context.Context, certs []renewal.Cert) {
	if w.Reporter.Client == nil {
		return
	}
	list := make([]Expiry, 0, len(certs))
	for _, c := range certs {
		list = append(list, Expiry{Name: c.Name, NotAfter: c.Cert.NotAfter.UTC(), Issuer: hex.EncodeToString(c.Cert.AuthorityKeyId)})
	}
	data, _ := json.Marshal(list)
	ann := map[string]string{CertificatesAnnotation: string(data)}
	if trust, err := w.trust(); err == nil {
		ann[TrustAnnotation] = trust
	} else if w.Reporter.Console != nil {
		fmt.Fprintf(w.Reporter.Console, "kubeup: %s: trust not published: %v\n", w.Machine, err)
	}
	key := ann[CertificatesAnnotation] + "|" + ann[TrustAnnotation]
	if key == w.published {
		return
	}
	if err := annotateNode(ctx, w.Reporter.Client, w.Machine, ann); err != nil {
		if w.Reporter.Console != nil {
			fmt.Fprintf(w.Reporter.Console, "kubeup: %s: could not publish certificate expiry on the Node: %v\n", w.Machine, err)
		}
		return
	}
	w.published = key
}

// trust lists the key ids of the CAs the machine trusts (its pki/ca.crt).
func (w *CertWatch) trust() (string, error) {
	data, err := os.ReadFile(filepath.Join(w.Root, manifests.PKIDir, "ca.crt"))
	if err != nil {
		return "", err
	}
	cas, err := pki.CertsPEM(data)
	if err != nil {
		return "", fmt.Errorf("%s/ca.crt: %w", manifests.PKIDir, err)
	}
	var ids []string
	for _, c := range cas {
		ids = append(ids, hex.EncodeToString(c.SubjectKeyId))
	}
	return strings.Join(ids, ","), nil
}
