package vsphere

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
)

// Credentials say how to reach and log in to vSphere. Keep them out of logs: String redacts the
// password.
type Credentials struct {
	// URL is the SDK endpoint with the login in its user info.
	URL      *url.URL
	Insecure bool
	// CACerts are PEM files to trust (GOVC_TLS_CA_CERTS).
	CACerts string
	// Folder and ResourcePool are inventory paths to clone into; empty means the defaults.
	Folder, ResourcePool string
}

// CredentialsFromEnv reads the govc variables (package doc), with server, the config's
// vsphere.server, as the fallback for GOVC_URL.
func CredentialsFromEnv(server string) (Credentials, error) {
	return credentialsFrom(os.Getenv, server)
}

func credentialsFrom(getenv func(string) string, server string) (Credentials, error) {
	raw, from := getenv("GOVC_URL"), "GOVC_URL"
	if raw == "" {
		raw, from = server, "vsphere.server"
	}
	if raw == "" {
		return Credentials{}, fmt.Errorf("no vSphere server: set vsphere.server in the cluster config or GOVC_URL")
	}
	u, err := soap.ParseURL(raw)
	if err != nil {
		// The URL may hold a password: name the variable, not its value.
		return Credentials{}, fmt.Errorf("%s is not a URL or host name (fix: e.g. vcenter.example.com or https://vcenter.example.com/sdk)", from)
	}
	user := u.User.Username()
	pass, _ := u.User.Password()
	if v := getenv("GOVC_USERNAME"); v != "" {
		user = v
	}
	if v := getenv("GOVC_PASSWORD"); v != "" {
		pass = v
	}
	if user == "" {
		return Credentials{}, fmt.Errorf("no vSphere login for %s: set GOVC_USERNAME and GOVC_PASSWORD", u.Host)
	}
	u.User = url.UserPassword(user, pass)
	c := Credentials{URL: u, CACerts: getenv("GOVC_TLS_CA_CERTS"), Folder: getenv("GOVC_FOLDER"), ResourcePool: getenv("GOVC_RESOURCE_POOL")}
	if v := getenv("GOVC_INSECURE"); v != "" {
		if c.Insecure, err = strconv.ParseBool(v); err != nil {
			return Credentials{}, fmt.Errorf("GOVC_INSECURE=%q: use 1 or 0", v)
		}
	}
	return c, nil
}

// String is the server and user, never the password.
func (c Credentials) String() string {
	if c.URL == nil {
		return "(no server)"
	}
	s := c.URL.Redacted()
	if c.Insecure {
		s += " (certificate not verified: GOVC_INSECURE)"
	}
	return s
}

// connect logs in. Errors name the server and user, never the password.
func (c Credentials) connect(ctx context.Context) (*govmomi.Client, error) {
	sc := soap.NewClient(c.URL, c.Insecure)
	if c.CACerts != "" {
		if err := sc.SetRootCAs(c.CACerts); err != nil {
			return nil, fmt.Errorf("GOVC_TLS_CA_CERTS %s: %w", c.CACerts, err)
		}
	}
	client, err := login(ctx, sc, c.URL.User)
	if err != nil {
		hint := "check GOVC_URL or vsphere.server, GOVC_USERNAME and GOVC_PASSWORD"
		if strings.Contains(err.Error(), "certificate") {
			hint = "trust the server's CA with GOVC_TLS_CA_CERTS=<pem file> (or, on a test server, GOVC_INSECURE=1)"
		}
		return nil, fmt.Errorf("log in to vSphere at %s: %w (fix: %s)", c, stripPassword(err, c.URL), hint)
	}
	return client, nil
}

func login(ctx context.Context, sc *soap.Client, user *url.Userinfo) (*govmomi.Client, error) {
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, err
	}
	client := &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}
	if err := client.Login(ctx, user); err != nil {
		return nil, err
	}
	return client, nil
}

// stripPassword keeps a password out of an error that quotes the URL (net/url errors do).
func stripPassword(err error, u *url.URL) error {
	pass, ok := u.User.Password()
	if !ok || pass == "" || !strings.Contains(err.Error(), pass) {
		return err
	}
	return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), pass, "xxxxx"))
}
