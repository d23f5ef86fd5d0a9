package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"testing"
)

// Network failures are "unreachable" however deep they are wrapped; a TLS failure is not (the
// server answered); an inner mark wins over an outer one.
func TestExitCode(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:1", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	tlsErr := &url.Error{Op: "Get", URL: "https://127.0.0.1:1", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("plain"), ExitFailed},
		{fmt.Errorf("list the nodes: %w", refused), ExitUnreachable},
		{fmt.Errorf("list the nodes: %w", tlsErr), ExitFailed},
		{&net.DNSError{Err: "no such host", Name: "x"}, ExitUnreachable},
		{Usage(errors.New("bad")), ExitUsage},
		{Failed(Usage(errors.New("bad"))), ExitUsage},
		{fmt.Errorf("outer: %w", Unreachable(errors.New("down"))), ExitUnreachable},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
