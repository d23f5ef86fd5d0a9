// Package metricsserver serves the agent's Prometheus metrics the way the kubelet serves its
// own: over TLS with a certificate from the cluster CA (the kubelet's serving certificate), to
// clients the API server vouches for. A bearer token is checked by TokenReview, a client
// certificate against the cluster CA, and the user must be allowed to get the path (a
// SubjectAccessReview on the non-resource URL /metrics, which the built-in ClusterRole
// system:monitoring grants). Anyone else gets 401 or 403.
package metricsserver
