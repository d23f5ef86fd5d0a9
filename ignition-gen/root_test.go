package main

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/ignition/v2/config/v3_4"
)

// ignitionGen runs the command as its binary would and returns what it printed.
func ignitionGen(t *testing.T, args ...string) string {
	t.Helper()
	var b bytes.Buffer
	cmd := newRootCmd()
	cmd.SetOut(&b)
	cmd.SetErr(&b)
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("ignition-gen %s: %v\n%s", strings.Join(args, " "), err, b.String())
	}
	return b.String()
}

// On AWS the master's config holds the CA keys: ignition-gen writes the pointer that goes into
// user-data instead (0600, no key in it, pinned by the config's SHA-512 to the S3 object the
// AWS provider uploads it to) and says so. The node role's config goes whole.
func TestAWSMasterGetsAPointer(t *testing.T) {
	dir := t.TempDir()
	state, out := filepath.Join(dir, "state"), filepath.Join(dir, "out")
	printed := ignitionGen(t, "--config", "../configs/aws.yaml", "--state", state, "--out", out)
	ptrFile := filepath.Join(out, "master.pointer.ign")
	want := "master: EC2 user-data gets " + ptrFile + ", a hash-pinned pointer to s3://example-kubeup-configs/aws/master.ign (holds private keys)"
	if !strings.Contains(printed, want) {
		t.Errorf("output lacks %q:\n%s", want, printed)
	}
	if st, err := os.Stat(ptrFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("pointer file: %v; want it written 0600", err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "master.ign"))
	if err != nil {
		t.Fatal(err)
	}
	ptrRaw, err := os.ReadFile(ptrFile)
	if err != nil {
		t.Fatal(err)
	}
	ptr, rep, err := v3_4.Parse(ptrRaw)
	if err != nil || len(rep.Entries) > 0 {
		t.Fatalf("pointer config: %v %v", err, rep)
	}
	sum := sha512.Sum512(raw)
	if src := ptr.Ignition.Config.Replace.Source; src == nil || *src != "s3://example-kubeup-configs/aws/master.ign" {
		t.Errorf("pointer source %v", src)
	}
	if h := ptr.Ignition.Config.Replace.Verification.Hash; h == nil || *h != "sha512-"+hex.EncodeToString(sum[:]) {
		t.Errorf("pointer hash %v does not pin the config", h)
	}
	if bytes.Contains(ptrRaw, []byte("PRIVATE KEY")) {
		t.Error("the pointer holds a private key")
	}

	printed = ignitionGen(t, "--config", "../configs/aws.yaml", "--state", state, "--out", out, "--role", "node")
	if !strings.Contains(printed, "  node: EC2 user-data\n") {
		t.Errorf("the node role's config should go whole into user-data:\n%s", printed)
	}
	if _, err := os.Stat(filepath.Join(out, "node.pointer.ign")); !os.IsNotExist(err) {
		t.Errorf("a pointer for the node role's config: %v", err)
	}
}
