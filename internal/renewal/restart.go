package renewal

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/manifests"
)

// RestartedAnnotation is stamped on a static pod's manifest to make the kubelet replace the
// pod: the kubelet restarts a static pod whenever its manifest changes.
const RestartedAnnotation = "kubeup.dev/restarted-at"

// StaticPods restarts the master's components the way a machine with no operator can: by
// changing their static pod manifests, then waiting until the kubelet has stopped the old
// process (so the health check that follows can only see the new one).
type StaticPods struct {
	// Root prefixes the manifests directory; Proc is the proc filesystem ("/proc").
	Root, Proc string
	// StopTimeout bounds the wait for the old process to go (2 minutes if zero).
	StopTimeout time.Duration
}

// Restart is a Renewer's Restart.
func (s *StaticPods) Restart(ctx context.Context, comp string) error {
	old := s.pids(comp)
	path := filepath.Join(s.Root, manifests.ManifestsDir, comp+".yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(data, &pod); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[RestartedAnnotation] = time.Now().UTC().Format(time.RFC3339Nano)
	out, err := yaml.Marshal(&pod)
	if err != nil {
		return err
	}
	if err := fsutil.ReplaceFile(path, out, 0o600); err != nil {
		return err
	}
	if len(old) == 0 {
		return nil // not running: the kubelet starts it from the new manifest
	}
	timeout := s.StopTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	// Polling /proc for the old processes.
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		for pid := range old {
			if _, err := os.Stat(filepath.Join(s.Proc, strconv.Itoa(pid))); err == nil {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	} else if err != nil {
		return fmt.Errorf("the kubelet has not stopped %s (pids %v) %v after its manifest changed", comp, keys(old), timeout)
	}
	return nil
}

// pids are the processes whose command is comp.
func (s *StaticPods) pids(comp string) map[int]bool {
	out := map[int]bool{}
	entries, _ := os.ReadDir(s.Proc)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(s.Proc, e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		if filepath.Base(string(argv0)) == comp {
			out[pid] = true
		}
	}
	return out
}

func keys(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}
