package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kubeup.dev/kubeup/internal/cluster"
)

// TestUpAWSDryRun runs kubeup's AWS path as the CLI does, the SDK finding the stand-in
// through AWS_ENDPOINT_URL and credentials in the environment: a plan, and no change to AWS
// or to the state directory.
func TestUpAWSDryRun(t *testing.T) {
	srv := awsStandIn(t)
	cfg, err := cluster.Load("../configs/aws.yaml")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state")
	var out bytes.Buffer
	if err := up(context.Background(), &out, cfg, state, cloudOptions{dryRun: true, numNodes: 2}); err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	for _, want := range []string{"would create the secrets bundle", "create   vpc", "create   instance", "create   autoscaling-group",
		"create   s3-object        s3://example-kubeup-configs/aws/master.ign"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, out.String())
		}
	}
	for _, c := range srv.Calls() {
		if !strings.HasPrefix(c, "Describe") && !strings.HasPrefix(c, "Get") && !strings.HasPrefix(c, "Head") {
			t.Errorf("dry run called %s", c)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("dry run made the state directory: %v", err)
	}
	out.Reset()
	p, err := targetProvider(cfg, state, &out, cloudOptions{dryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Down(context.Background()); err != nil {
		t.Fatalf("down dry run: %v\n%s", err, out.String())
	}
}
