package tokenpool

import (
	"context"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"kubeup.dev/kubeup/internal/pki"
)

// A Source whose cluster does not answer (a real client, nothing listening) gives the bundle's
// token while it is valid, never an expired one, and always says the cluster did not answer.
// (Reading the published token from a real API server: test/controlplane's TestTokenPool.)
func TestSourceFallsBackOnlyToAValidToken(t *testing.T) {
	c := kubernetes.NewForConfigOrDie(&rest.Config{Host: "https://127.0.0.1:1", Timeout: 2 * time.Second})
	now := time.Now()
	valid, _ := pki.NewToken(now, time.Hour)
	expired, _ := pki.NewToken(now.Add(-2*time.Hour), time.Hour)
	for _, tc := range []struct {
		name     string
		fallback pki.Token
		want     string
	}{
		{"valid fallback", valid, valid.ID},
		{"expired fallback", expired, ""},
		{"no fallback", pki.Token{}, ""},
	} {
		s := &Source{Client: c, Fallback: tc.fallback}
		got, err := s.Current(context.Background())
		if got.ID != tc.want || err == nil {
			t.Errorf("%s: got %q, %v; want %q and the error", tc.name, got.ID, err, tc.want)
		}
	}
}
