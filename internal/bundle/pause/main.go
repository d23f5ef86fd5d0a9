// Command pause is the pod sandbox's placeholder process: it holds the pod's namespaces open,
// reaps zombies (it is PID 1 when the pod shares its PID namespace) and exits on SIGINT or
// SIGTERM. It is kubeup's own, built statically from this file for registry.k8s.io/pause.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
