package cluster

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error it returns is a non-empty
// Problems naming the file, and that a config it accepts is final: it re-validates without a
// problem and defaulting it again changes nothing.
//
// Seeds: the example configs, the test base, and testdata/fuzz/FuzzParse (edge cases and
// regressions, and as adversarial-*, test/adversarial's hostile configs, which its
// TestConfigCasesSeedTheFuzzer keeps there). Run: go test -run='^$' -fuzz=FuzzParse -fuzztime=60s ./internal/cluster/
func FuzzParse(f *testing.F) {
	for _, file := range exampleConfigs(f) {
		f.Add(readFile(f, file))
	}
	f.Add([]byte(validBase))
	f.Add([]byte(minimal))
	f.Add([]byte(manyProblems))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("fuzz.yaml", src)
		if err != nil {
			var probs Problems
			if !errors.As(err, &probs) || len(probs) == 0 {
				t.Fatalf("error is not a non-empty Problems: %#v", err)
			}
			for _, p := range probs {
				if p.File != "fuzz.yaml" || p.Msg == "" || p.Line < 0 {
					t.Errorf("malformed problem %#v", p)
				}
			}
			_ = err.Error()
			return
		}
		if c == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
		if probs := c.Validate("x"); len(probs) > 0 {
			t.Fatalf("accepted config does not re-validate: %v", probs)
		}
		once := cloneConfig(c)
		c.Default()
		if !reflect.DeepEqual(c, once) {
			t.Fatalf("Default changed an accepted config:\n got %+v\nwant %+v", c, once)
		}
		// What the renderers use must work on every accepted config.
		if c.Master() == nil || !c.Master().IP().IsValid() || !c.NthServiceIP(10).IsValid() {
			t.Fatalf("accepted config without a usable master or service range: %+v", c)
		}
		// The endpoint is set and the API server certificate covers its host.
		host, port := c.EndpointHostPort()
		dns, ips := c.APIServerSANs()
		covered := slices.Contains(dns, host)
		if a, err := netip.ParseAddr(host); err == nil {
			covered = slices.Contains(ips, a)
		}
		if host == "" || port < 1 || port > 65535 || !covered {
			t.Fatalf("accepted endpoint %q (host %q, port %d) not covered by SANs %q %v", c.ControlPlane.Endpoint, host, port, dns, ips)
		}
		_ = c.EndpointURL()
	})
}
