// Package renewal keeps a master's certificates from expiring with nobody to log in and renew
// them: the agent reads every leaf certificate and kubeconfig the master holds, re-issues those
// with less than a share of their lifetime left from the CA on the machine (same key, same
// names), writes them atomically, and restarts the component that reads them, one at a time,
// each followed by a health check that proves the new certificate is in use. A renewal that
// fails its check is undone: the old, still valid files go back and the component is restarted
// on them. It also reports every certificate's expiry (Prometheus metrics, Node annotation,
// Warning Events at 30 and 7 days).
package renewal
