package testenv

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Answer is one request of SteadyClient: when it was sent and how it failed.
type Answer struct {
	At  time.Time
	Err error
}

// SteadyClient sends a request every interval, each with the kubeconfig as it is on disk then
// (as kubectl does), each bounded by timeout, until stop, which returns every answer (and may
// be called again).
func SteadyClient(ctx context.Context, kubeconfig string, every, timeout time.Duration) (stop func() []Answer) {
	return Steady(ctx, every, func(ctx context.Context) error { return GetDefaultNamespace(ctx, kubeconfig, timeout) })
}

// Steady calls request every interval until stop, which returns every answer (and may be
// called again).
func Steady(ctx context.Context, every time.Duration, request func(context.Context) error) (stop func() []Answer) {
	ctx, cancel := context.WithCancel(ctx)
	var answers []Answer
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			at := time.Now()
			err := request(ctx)
			if ctx.Err() != nil {
				return
			}
			answers = append(answers, Answer{at, err})
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return func() []Answer {
		cancel()
		wg.Wait()
		return answers
	}
}

// GetDefaultNamespace reads the namespace default with the kubeconfig at path, as kubectl
// would.
func GetDefaultNamespace(ctx context.Context, kubeconfig string, timeout time.Duration) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.Timeout = timeout
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if _, err := c.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		return fmt.Errorf("%s", strings.TrimSpace(err.Error()))
	}
	return nil
}

// Refused reports whether a request failed because one side refused the other's certificate:
// a 401, or a server certificate from an authority the kubeconfig does not trust. (A server
// that is restarting fails requests otherwise.)
func Refused(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "Unauthorized") || strings.Contains(err.Error(), "unknown authority"))
}
