package vsphere

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestCredentialsFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    map[string]string
		server string
		want   string // Credentials.String
		err    string
	}{
		{"config server, login from env", map[string]string{"GOVC_USERNAME": "kubeup@vsphere.local", "GOVC_PASSWORD": "s3cret"},
			"vcenter.example.internal", "https://kubeup%40vsphere.local:xxxxx@vcenter.example.internal/sdk", ""},
		{"GOVC_URL wins over the config", map[string]string{"GOVC_URL": "https://admin:s3cret@sim.local:8989/sdk"},
			"vcenter.example.internal", "https://admin:xxxxx@sim.local:8989/sdk", ""},
		{"GOVC_USERNAME over the URL's", map[string]string{"GOVC_URL": "admin:s3cret@sim.local", "GOVC_USERNAME": "other", "GOVC_INSECURE": "true"},
			"", "https://other:xxxxx@sim.local/sdk (certificate not verified: GOVC_INSECURE)", ""},
		{"no server", map[string]string{"GOVC_USERNAME": "u"}, "", "", "set vsphere.server in the cluster config or GOVC_URL"},
		{"no login", map[string]string{}, "vcenter.example.internal", "", "set GOVC_USERNAME and GOVC_PASSWORD"},
		{"bad insecure", map[string]string{"GOVC_URL": "u:p@h", "GOVC_INSECURE": "maybe"}, "", "", "GOVC_INSECURE"},
		{"bad URL keeps the password out", map[string]string{"GOVC_URL": "https://u:s3cret@[::1"}, "", "", "GOVC_URL is not a URL"},
	} {
		c, err := credentialsFrom(env(tc.env), tc.server)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%s: error %v, want one saying %q without the password", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := c.String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestLoginErrorHidesPassword(t *testing.T) {
	// Nothing listens on port 1: the login fails, and its error must not carry the password.
	c, err := credentialsFrom(env(map[string]string{"GOVC_URL": "https://admin:s3cret@127.0.0.1:1/sdk"}), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = Connect(ctx, c, "DC0")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("login error %q: want one naming the server without the password", err)
	}
}
