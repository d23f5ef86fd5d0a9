package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/events"

	"kubeup.dev/kubeup/internal/machine"
)

// Phase1Annotation holds a machine's phase-1 report (the console line's JSON) on its Node.
const Phase1Annotation = "kubeup.dev/phase-1"

// Publish puts the phase-1 report on the machine's Node once the Node exists: as the
// annotation and as an Event (through ev, if set). The kubelet registers the Node some time
// after phase 1, so this waits for it until ctx ends.
func Publish(ctx context.Context, c kubernetes.Interface, ev events.EventRecorder, r machine.Phase1Report) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var last error
	// Polling for the Node to be registered.
	err = wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		last = annotateNode(ctx, c, r.Machine, map[string]string{Phase1Annotation: string(data)})
		if last != nil && !apierrors.IsNotFound(last) && !apierrors.IsForbidden(last) {
			// Forbidden, too, while the node authorizer has not seen the Node yet.
			return false, fmt.Errorf("annotate node %s: %w", r.Machine, last)
		}
		return last == nil, nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("annotate node %s: %w (last: %v)", r.Machine, ctx.Err(), last)
	} else if err != nil {
		return err
	}
	rep := &Reporter{Machine: r.Machine, Client: c, Events: ev}
	failed := 0
	for _, ch := range r.Checks {
		if !ch.Pass {
			failed++
		}
	}
	rep.Report(ctx, "1", "NodeSpec", r.Pass, fmt.Sprintf("%d checks, %d failed (annotation %s has them all)", len(r.Checks), failed, Phase1Annotation))
	return nil
}

// annotateNode sets annotations on a Node by a merge patch, as the agent's field manager.
func annotateNode(ctx context.Context, c kubernetes.Interface, node string, annotations map[string]string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return err
	}
	_, err = c.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubeup-agent"})
	return err
}

// WaitForKubeconfig waits until a kubeconfig exists (the kubelet writes its own after TLS
// bootstrap) and loads it as a ReloadingConfig: the client follows the kubelet's certificate
// files and the file's CA data as they change (a CA rotation changes both).
func WaitForKubeconfig(ctx context.Context, root, path string) (*rest.Config, error) {
	full := filepath.Join(root, path)
	last := fmt.Errorf("%s never appeared", path)
	// Polling for the kubelet's files.
	err := wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(context.Context) (bool, error) {
		if _, err := os.Stat(full); err != nil {
			return false, nil
		}
		// The kubelet writes its kubeconfig and the client certificate it names one after
		// the other: a kubeconfig whose certificate does not load yet is waited for too.
		cfg, err := clientcmd.BuildConfigFromFlags("", full)
		if err == nil && cfg.CertFile != "" {
			_, err = tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		}
		if err != nil {
			last = fmt.Errorf("load %s: %w", path, err)
		}
		return err == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", last, ctx.Err())
	}
	return ReloadingConfig(full)
}
