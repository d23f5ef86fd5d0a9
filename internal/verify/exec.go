package verify

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
)

// execIn runs cmd in a pod's first container through the API server (which reaches the
// kubelet over TLS, with its serving certificate) and returns stdout; a non-zero exit is an
// error that carries the output.
func execIn(ctx context.Context, c kubernetes.Interface, cfg *rest.Config, pod *corev1.Pod, cmd ...string) (string, error) {
	req := c.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: pod.Spec.Containers[0].Name, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err != nil {
		return "", err
	}
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	if err != nil {
		return "", err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, httpstream.IsUpgradeFailure)
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	out := strings.TrimSpace(stdout.String())
	if err != nil {
		return out, fmt.Errorf("exec %v in %s/%s on %s: %w: %s %s", cmd, pod.Namespace, pod.Name, pod.Spec.NodeName, err, out, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// failures keeps the FAIL lines of kubeup-probe's output.
func failures(out string) []string {
	var f []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "FAIL ") {
			f = append(f, strings.TrimPrefix(l, "FAIL "))
		}
	}
	return f
}
