package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushCommand parses push's flags and pushes every test image.
func pushCommand(args []string, stdin io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	repo := fs.String("repo", "", "the repository the images go under: HOST:PORT/PATH")
	var in inputs
	fs.StringVar(&in.Bins, "bins", "", "the binaries (hack/conformance-tools.sh)")
	fs.StringVar(&in.Userland, "userland", "", "the Debian userland sets")
	fs.StringVar(&in.Source, "source", "", "k8s.io/kubernetes at the release")
	ca := fs.String("ca", "", "PEM CA the registry's certificate chains to (else: plain HTTP, loopback only)")
	user := fs.String("username", "", "the registry's user; the password is read from standard input")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("push: %w (%s)", err, usage)
	}
	if *repo == "" || in.Bins == "" || in.Userland == "" || in.Source == "" {
		return fmt.Errorf("push: -repo, -bins, -userland and -source are required (%s)", usage)
	}
	opts := []name.Option{name.StrictValidation}
	var tr http.RoundTripper = http.DefaultTransport
	if *ca == "" {
		// Plain HTTP is for a registry on this host's loopback only (the tests' own).
		if host := strings.Split(*repo, "/")[0]; !strings.HasPrefix(host, "127.") && !strings.HasPrefix(host, "localhost:") {
			return fmt.Errorf("push: -repo %s without -ca: plain HTTP only to a registry on loopback", *repo)
		}
		opts = append(opts, name.Insecure)
	} else {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("push: -ca %s: no PEM certificate", *ca)
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		tr = t
	}
	auth := authn.Anonymous
	if *user != "" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		auth = &authn.Basic{Username: *user, Password: strings.TrimRight(line, "\r\n")}
	}
	return push(*repo, in, out, opts, remote.WithAuth(auth), remote.WithTransport(tr))
}

// push builds every test image and writes it to repo.
func push(repo string, in inputs, out io.Writer, opts []name.Option, ropts ...remote.Option) error {
	for _, t := range testImages {
		ref, err := name.NewTag(t.ref(repo), opts...)
		if err != nil {
			return err
		}
		img, err := buildImage(t, in, ref.String())
		if err != nil {
			return err
		}
		if err := remote.Write(ref, img, ropts...); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s@%s: %s\n", ref, d, t.Made)
	}
	return nil
}
