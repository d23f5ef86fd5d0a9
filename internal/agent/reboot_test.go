package agent

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"

	"kubeup.dev/kubeup/internal/machine"
)

// A reboot request names the boot to end: another boot's request (an earlier one's, still on
// the Node), another Node's, or none does nothing.
func TestWantsReboot(t *testing.T) {
	node := func(name, boot string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if boot != "" {
			n.Annotations = map[string]string{machine.RebootAnnotation: boot}
		}
		return n
	}
	for _, c := range []struct {
		n    *corev1.Node
		boot string
		want bool
	}{
		{node("node-1", "this-boot"), "this-boot", true},
		{node("node-1", "old-boot"), "this-boot", false},
		{node("node-2", "this-boot"), "this-boot", false},
		{node("node-1", ""), "this-boot", false},
		{node("node-1", ""), "", false},
	} {
		if got := wantsReboot(c.n, "node-1", c.boot); got != c.want {
			t.Errorf("node %s asking %q, this boot %q: %v, want %v", c.n.Name, c.n.Annotations[machine.RebootAnnotation], c.boot, got, c.want)
		}
	}
}

// The Rebooter sees its Node asking this boot to end and reboots the machine, once however
// often the Node changes after.
func TestRebooterRebootsOnce(t *testing.T) {
	node := func(boot string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Annotations: map[string]string{machine.RebootAnnotation: boot}}}
	}
	c := fake.NewClientset(node("old-boot"))
	var reboots atomic.Int32
	r := &Rebooter{Client: c, Node: "node-1", BootID: "this-boot", Log: t.Logf,
		Reboot: func(context.Context) error { reboots.Add(1); return nil }}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	for range 3 {
		if _, err := c.CoreV1().Nodes().Update(ctx, node("this-boot"), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return reboots.Load() > 0, nil
	}); err != nil {
		t.Fatal("no reboot for this boot's request")
	}
	cancel()
	<-done
	if n := reboots.Load(); n != 1 {
		t.Errorf("%d reboots, want 1", n)
	}
}
