// Command kubeup-probe is the small program `kubeup verify` runs in the cluster to check the
// network phases from the inside: it serves HTTP (the target of pod-to-pod and Service checks)
// and, run through exec in a pod, fetches URLs and resolves names and prints what it saw. It
// ships in the offline bundle as kubeup.dev/probe, so the checks pull nothing.
//
//	kubeup-probe serve [--port 8080]   answer every request with the pod's name
//	kubeup-probe get URL...            GET each URL; one line per URL; exit 1 if any failed
//	kubeup-probe lookup NAME...        resolve each name; one line per name; exit 1 if any failed
//	kubeup-probe wait --ca FILE URL    GET URL every 2 s, trusting only FILE's CA, until it
//	                                   answers 200 (the controller-manager's init container)
//	kubeup-probe refused URL...        GET each URL over HTTPS without credentials; OK when the
//	                                   server answers 401 or 403 (a kubelet must)
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var failed bool
	switch os.Args[1] {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ExitOnError)
		port := fs.Int("port", 8080, "port to listen on")
		fs.Parse(os.Args[2:])
		name, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, name) })
		fmt.Fprintln(os.Stderr, "kubeup-probe: serving on port", *port)
		if err := http.ListenAndServe(fmt.Sprintf(":%d", *port), nil); err != nil {
			fmt.Fprintln(os.Stderr, "kubeup-probe:", err)
			os.Exit(1)
		}
	case "get":
		client := &http.Client{Timeout: 5 * time.Second}
		for _, url := range os.Args[2:] {
			failed = get(client, url) != nil || failed
		}
	case "wait":
		fs := flag.NewFlagSet("wait", flag.ExitOnError)
		ca := fs.String("ca", "", "PEM file of the CA the server's certificate must chain to")
		fs.Parse(os.Args[2:])
		if *ca == "" || fs.NArg() != 1 {
			usage()
		}
		client, err := trusting(*ca)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kubeup-probe:", err)
			os.Exit(1)
		}
		// Until it answers, for as long as it takes: the kubelet starts the pod's containers only
		// after this one exits, and restarts it if it fails.
		for get(client, fs.Arg(0)) != nil {
			time.Sleep(2 * time.Second) // the interval between two requests to the server
		}
	case "refused":
		// The question is whether the server lets a client without credentials in, not who the
		// server is: its certificate is not checked.
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		}}
		for _, url := range os.Args[2:] {
			failed = refused(client, url) != nil || failed
		}
	case "lookup":
		for _, name := range os.Args[2:] {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			addrs, err := net.DefaultResolver.LookupHost(ctx, name)
			cancel()
			if err != nil {
				fmt.Printf("FAIL %s %v\n", name, err)
				failed = true
				continue
			}
			fmt.Printf("OK %s %s\n", name, strings.Join(addrs, ","))
		}
	default:
		usage()
	}
	if failed {
		os.Exit(1)
	}
}

func get(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		fmt.Printf("FAIL %s %v\n", url, err)
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode != http.StatusOK {
		fmt.Printf("FAIL %s HTTP %d\n", url, resp.StatusCode)
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	fmt.Printf("OK %s %s\n", url, strings.TrimSpace(string(body)))
	return nil
}

// refused GETs url and says OK when the server refuses it for want of credentials.
func refused(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		fmt.Printf("FAIL %s %v\n", url, err)
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
		fmt.Printf("FAIL %s HTTP %d to a request without credentials\n", url, resp.StatusCode)
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	fmt.Printf("OK %s HTTP %d\n", url, resp.StatusCode)
	return nil
}

// trusting is an HTTPS client that trusts only the CA certificates in caFile.
func trusting(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", caFile)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}, nil
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kubeup-probe serve [--port N] | get URL... | lookup NAME... | wait --ca FILE URL | refused URL...")
	os.Exit(2)
}
