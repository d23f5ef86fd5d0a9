package ignition

import (
	"fmt"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/cluster"
)

// BenchmarkGenerate1000 renders a 1,000-machine cluster from an existing bundle, in process, for
// profiling (go test -bench Generate1000 -cpuprofile cpu.out). `make bench` measures the binary.
func BenchmarkGenerate1000(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("apiVersion: kubeup.dev/v1alpha1\nkind: Cluster\nname: bench\nqemu:\n  network: 10.10.0.0/16\nmachines:\n")
	for i := range 1000 {
		role := "node"
		if i == 0 {
			role = "master"
		}
		ip := 10 + i
		fmt.Fprintf(&sb, "  - name: m-%d\n    role: %s\n    mac: \"52:54:00:10:%02x:%02x\"\n    address: 10.10.%d.%d/16\n", i, role, ip/256, ip%256, ip/256, ip%256)
	}
	cfg, err := cluster.Parse("bench.yaml", []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	bundle := newBundle(b, cfg)
	out := b.TempDir()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Generate(cfg, bundle, Options{OutDir: out}); err != nil {
			b.Fatal(err)
		}
	}
}
