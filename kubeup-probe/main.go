// Command kubeup-probe is the small program `kubeup verify` runs in the cluster to check the
// network phases from the inside: it serves HTTP (the target of pod-to-pod and Service checks)
// and, run through exec in a pod, fetches URLs and resolves names and prints what it saw. It
// ships in the offline bundle as kubeup.dev/probe, so the checks pull nothing.
//
//	kubeup-probe serve [--port 8080]   answer every request with the pod's name
//	kubeup-probe get URL...            GET each URL; one line per URL; exit 1 if any failed
//	kubeup-probe lookup NAME...        resolve each name; one line per name; exit 1 if any failed
package main

import (
	"context"
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

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kubeup-probe serve [--port N] | get URL... | lookup NAME...")
	os.Exit(2)
}
