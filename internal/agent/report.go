package agent

import (
	"context"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Reporter tells the world how a machine's bring-up goes: one line per step on the console
// (the serial console on a VM: readable without logging in) and, once the API answers, a
// Kubernetes Event on the machine's Node.
type Reporter struct {
	Machine string
	Console io.Writer
	// Client, when set, also records each report as an Event.
	Client kubernetes.Interface
}

// Report prints and records one phase result. ok=false makes a Warning event.
func (r *Reporter) Report(ctx context.Context, phase, result string, ok bool, msg string) {
	status := "ok"
	if !ok {
		status = "FAIL"
	}
	if r.Console != nil {
		fmt.Fprintf(r.Console, "kubeup: %s phase %s %s %s: %s\n", r.Machine, phase, result, status, msg)
	}
	if r.Client == nil {
		return
	}
	typ := corev1.EventTypeNormal
	if !ok {
		typ = corev1.EventTypeWarning
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: "kubeup-" + r.Machine + "-", Namespace: metav1.NamespaceDefault},
		InvolvedObject:      corev1.ObjectReference{Kind: "Node", Name: r.Machine, APIVersion: "v1"},
		Reason:              "KubeupPhase" + phase + result,
		Message:             msg,
		Type:                typ,
		Source:              corev1.EventSource{Component: "kubeup-agent", Host: r.Machine},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: "kubeup.dev/agent",
		ReportingInstance:   r.Machine,
	}
	if _, err := r.Client.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, ev, metav1.CreateOptions{}); err != nil && r.Console != nil {
		fmt.Fprintf(r.Console, "kubeup: %s: could not record event: %v\n", r.Machine, err)
	}
}
