package etcdsnapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
)

// EtcdPort is the client port etcd listens on, on the master's loopback among others.
const EtcdPort = 2379

// Forward opens a port-forward from a free port on the host's loopback to etcd's client port in
// the running etcd static pod (label component=etcd in kube-system), through the API server, as
// `kubectl port-forward` does (WebSocket, falling back to SPDY). It returns the local endpoint
// (127.0.0.1:PORT) and the pod's name; the forward ends when ctx does.
func Forward(ctx context.Context, cfg *rest.Config, errOut io.Writer) (endpoint, pod string, err error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", "", err
	}
	pods, err := cs.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: "component=etcd"})
	if err != nil {
		return "", "", fmt.Errorf("find the etcd pod: %w", err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning {
			pod = p.Name
			break
		}
	}
	if pod == "" {
		return "", "", fmt.Errorf("no running etcd pod in kube-system (label component=etcd; %d found): is the master up? (kubeup status)", len(pods.Items))
	}
	url := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(metav1.NamespaceSystem).Name(pod).SubResource("portforward").URL()
	rt, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return "", "", err
	}
	dialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: rt}, http.MethodPost, url)
	ws, err := portforward.NewSPDYOverWebsocketDialerForStreaming(url, cfg)
	if err != nil {
		return "", "", err
	}
	dialer = portforward.NewFallbackDialerForStreaming(ws, dialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	ready := make(chan struct{})
	fw, err := portforward.NewOnAddressesForStreamingWithContext(ctx, dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(EtcdPort)}, ready, io.Discard, errOut)
	if err != nil {
		return "", "", err
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		if err == nil {
			err = errors.New("the forward ended before it was ready")
		}
		return "", "", fmt.Errorf("port-forward to %s: %w", pod, err)
	case <-ctx.Done():
		return "", "", ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		return "", "", fmt.Errorf("port-forward to %s: no local port (%v)", pod, err)
	}
	return "127.0.0.1:" + strconv.Itoa(int(ports[0].Local)), pod, nil
}
