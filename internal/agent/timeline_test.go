package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"kubeup.dev/kubeup/internal/machine"
)

func TestTimelineFromSystemdTheNodeAndTheMaster(t *testing.T) {
	root := t.TempDir()
	r, err := NewRecorder("master", root)
	if err != nil {
		t.Fatal(err)
	}
	boot := r.boot
	at := func(s float64) time.Time { return boot.Add(time.Duration(s * float64(time.Second))) }
	r.Systemd = func(_ context.Context, unit, prop string) (string, error) {
		switch unit + "/" + prop {
		case "/UserspaceTimestampMonotonic":
			return "4200000\n", nil
		case "containerd.service/ActiveEnterTimestampMonotonic":
			return "9000000", nil
		case "kubelet.service/ActiveEnterTimestampMonotonic":
			return "0", nil // never active: left out
		}
		return "", fmt.Errorf("no such property")
	}
	r.At(machine.StepAPI, at(60))
	r.At(machine.StepAPI, at(70)) // the first time counts
	if err := os.MkdirAll(filepath.Join(root, "run/flannel"), 0o755); err != nil {
		t.Fatal(err)
	}
	subnet := filepath.Join(root, "run/flannel/subnet.env")
	os.WriteFile(subnet, nil, 0o644)
	os.Chtimes(subnet, at(95), at(95))
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "master", CreationTimestamp: metav1.NewTime(at(80))},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at(100))}}}}
	apiserver := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"component": "kube-apiserver"}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			State:                corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(at(50))}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{StartedAt: metav1.NewTime(at(30))}},
		}}}}
	r.FromSystemd(context.Background())
	r.FromNode(node, []corev1.Pod{apiserver})
	tl := r.Timeline()
	want := "userspace 4s, containerd 9s, pod/kube-apiserver 30s, api 60s, registered 80s, cni 95s, ready 100s"
	if got := tl.String(); got != want {
		t.Errorf("timeline:\n got %s\nwant %s", got, want)
	}
	var back machine.Timeline
	if err := json.Unmarshal([]byte(strings.TrimPrefix(tl.Line(), machine.TimelinePrefix)), &back); err != nil || back.String() != want || back.Machine != "master" {
		t.Errorf("the console line does not read back: %v %+v", err, back)
	}
	if s, ok := back.At(machine.StepReady); !ok || s != 100 {
		t.Errorf("ready at %v %v", s, ok)
	}
	var none *Recorder
	none.Now(machine.StepAPI) // a Master without a timeline records nothing, and does not panic
}

func TestFinishWaitsForReadyAndAnnotates(t *testing.T) {
	r, err := NewRecorder("node-1", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r.Systemd = func(context.Context, string, string) (string, error) { return "", fmt.Errorf("no systemd here") }
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", CreationTimestamp: metav1.Now()},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}}}}
	c := fake.NewClientset(n)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := r.Finish(ctx, c, func(string) {}); err == nil {
		t.Fatal("a NotReady node got a timeline")
	}
	n.Status.Conditions[0] = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}
	c = fake.NewClientset(n)
	var printed string
	if err := r.Finish(context.Background(), c, func(l string) { printed = l }); err != nil {
		t.Fatal(err)
	}
	got, _ := c.CoreV1().Nodes().Get(context.Background(), "node-1", metav1.GetOptions{})
	if !strings.HasPrefix(printed, machine.TimelinePrefix) || !strings.Contains(got.Annotations[machine.TimelineAnnotation], `"ready"`) {
		t.Errorf("printed %q, annotation %q", printed, got.Annotations[machine.TimelineAnnotation])
	}
}
