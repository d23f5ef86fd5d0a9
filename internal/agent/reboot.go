package agent

import (
	"context"
	"os"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"kubeup.dev/kubeup/internal/machine"
)

// BootIDFile is where the kernel says this boot's ID, the one the kubelet reports as the Node's
// bootID.
const BootIDFile = "/proc/sys/kernel/random/boot_id"

// Rebooter reboots the machine when its Node carries machine.RebootAnnotation naming this
// boot. It watches that one Node (the kubelet's credentials may read it).
type Rebooter struct {
	Client kubernetes.Interface
	Node   string
	// BootID is this boot's ID (BootIDFile).
	BootID string
	// Reboot reboots the machine; it is called at most once.
	Reboot func(ctx context.Context) error
	Log    func(format string, args ...any)
}

// ReadBootID is this boot's ID.
func ReadBootID(path string) (string, error) {
	data, err := os.ReadFile(path)
	return strings.TrimSpace(string(data)), err
}

// wantsReboot says whether n asks machine node's boot boot to end.
func wantsReboot(n *corev1.Node, node, boot string) bool {
	return n.Name == node && boot != "" && n.Annotations[machine.RebootAnnotation] == boot
}

// Run watches the Node until ctx ends or the machine is asked to reboot.
func (r *Rebooter) Run(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(r.Client, approverResync, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", r.Node).String()
	}))
	var once sync.Once
	check := func(obj any) {
		if n, ok := obj.(*corev1.Node); !ok || !wantsReboot(n, r.Node, r.BootID) {
			return
		}
		once.Do(func() {
			r.Log("reboot requested for this boot (%s=%s): rebooting", machine.RebootAnnotation, r.BootID)
			if err := r.Reboot(ctx); err != nil {
				r.Log("reboot: %v", err)
			}
		})
	}
	inf := factory.Core().V1().Nodes().Informer()
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: check, UpdateFunc: func(_, obj any) { check(obj) }})
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}
