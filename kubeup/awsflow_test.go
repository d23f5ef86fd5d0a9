package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/pki"
	"kubeup.dev/kubeup/internal/provider/aws/awstest"
	"kubeup.dev/kubeup/internal/provider/targets"
)

// playConsoles prints, into the stand-in's console output of every instance of the cluster as
// it appears, what the image prints on a first boot up to its phase-1 report: the machines a
// real EC2 would boot. It stops with ctx.
func playConsoles(ctx context.Context, srv *awstest.Server) {
	played := map[string]bool{}
	wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		for _, i := range srv.Instances() {
			if played[i.ID] || i.State != "running" {
				continue
			}
			played[i.ID] = true
			name := i.Tags["Name"]
			report := machine.Phase1Report{Machine: name, Phase: "1", Pass: true, Checks: []machine.Check{{Name: "kubelet", Pass: true, Evidence: "active"}}}
			srv.SetConsole(i.ID, fmt.Sprintf("[    0.000000] Linux version 6.1.0-40-cloud-amd64\n%s\n%s\n", machine.IgnitionOK, report.Line()))
		}
		return false, nil
	})
}

// TestUpOnAWSFollowsTheMachines: kubeup up on AWS ends as on QEMU. After it has made the
// resources it follows each machine through its console output (GetConsoleOutput: the master
// by its name, each node of the Auto Scaling group by the name its kubelet registers), asks the
// API at the Elastic IP, and at --timeout says where things stand and what to run. kubeup
// status shows the same machines in the same shape, and kubeup down removes what up made and
// the provider's directory.
func TestUpOnAWSFollowsTheMachines(t *testing.T) {
	srv := awsStandIn(t)
	cfg, path := localAs(t, cluster.TargetAWS, awsBlock)
	state := filepath.Join(t.TempDir(), "state")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go playConsoles(ctx, srv)

	var out bytes.Buffer
	err := up(ctx, &out, cfg, state, cloudOptions{numNodes: 2, configPath: path, timeout: 12 * time.Second})
	t.Logf("up:\n%s", out.String())
	if err == nil || !strings.Contains(err.Error(), "waiting for every machine to be Ready") || !strings.Contains(err.Error(), "get-console-output") {
		t.Fatalf("up against machines that never register: %v; want the wait's deadline and where to look", err)
	}
	var nodes []string
	for _, i := range srv.Instances() {
		if i.Tags["aws:autoscaling:groupName"] != "" {
			nodes = append(nodes, strings.Split(i.PrivateDNS, ".")[0])
		}
	}
	if len(nodes) != 2 {
		t.Fatalf("the Auto Scaling group runs %d nodes, want 2", len(nodes))
	}
	for _, m := range append([]string{"master"}, nodes...) {
		if !strings.Contains(out.String(), "] "+m+": phase 1 passed") {
			t.Errorf("up does not show %s reaching phase 1 from its console output", m)
		}
	}

	// status: the same machines, from the same reads, as a script reads them.
	out.Reset()
	cmd := newRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"status", "--config", path, "--state", state, "-o", "json"})
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("status: %v\n%s", err, out.String())
	}
	var st clusterStatus
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out.String())
	}
	if st.Target != cluster.TargetAWS || st.Endpoint != "https://"+awstest.AddressPlan(0)+":6443" || st.APIOK || len(st.Machines) != 3 {
		t.Fatalf("status: %+v", st)
	}
	for i, m := range st.Machines {
		want := "node"
		if i == 0 {
			want = "master"
		}
		if m.Role != want || m.Stage != "phase 1 passed" || m.Phase1Pass == nil || !*m.Phase1Pass || m.Boots != 1 {
			t.Errorf("status machine %d: %+v, want a %s at phase 1", i, m, want)
		}
	}

	out.Reset()
	cmd = newRootCmd()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"down", "--config", path, "--state", state})
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("down: %v\n%s", err, out.String())
	}
	for _, i := range srv.Instances() {
		if i.State != "terminated" {
			t.Errorf("after down: instance %s (%s) is %s", i.ID, i.Tags["Name"], i.State)
		}
	}
	if _, err := os.Stat(targets.Dir(state, cluster.TargetAWS)); !os.IsNotExist(err) {
		t.Errorf("down left %s: %v", targets.Dir(state, cluster.TargetAWS), err)
	}
	if _, err := os.Stat(filepath.Join(state, pki.MetaFile)); err != nil {
		t.Errorf("down removed the secrets bundle: %v", err)
	}
}
