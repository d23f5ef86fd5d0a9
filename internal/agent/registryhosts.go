package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/fsutil"
	"kubeup.dev/kubeup/internal/machine"
	"kubeup.dev/kubeup/internal/manifests"
)

// RegistryHosts writes the registry mirrors' files that the master publishes
// (manifests.RegistryHostsSecret) under containerd's certs.d, which containerd reads at every
// pull: how a node gets the mirrors' credentials, which its config never holds. It watches that
// one Secret, which the nodes' group may read, for as long as the machine runs.
type RegistryHosts struct {
	Client kubernetes.Interface
	// Root is the machine's root directory ("/" on a machine).
	Root string
	Log  func(format string, args ...any)
}

// HasRegistries says whether the machine's config wrote any registry's files: only then is
// there a Secret to follow.
func HasRegistries(root string) bool {
	entries, err := os.ReadDir(filepath.Join(root, machine.ContainerdCertsDir))
	return err == nil && len(entries) > 0
}

// Run follows the Secret until ctx ends.
func (r *RegistryHosts) Run(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(r.Client, approverResync,
		informers.WithNamespace(metav1.NamespaceSystem),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", manifests.RegistryHostsSecret).String()
		}))
	write := func(obj any) {
		s, ok := obj.(*corev1.Secret)
		if !ok || s.Name != manifests.RegistryHostsSecret {
			return
		}
		changed, err := r.Write(s)
		if err != nil {
			r.Log("registry mirrors: kube-system/%s: %v", manifests.RegistryHostsSecret, err)
		} else if len(changed) > 0 {
			r.Log("registry mirrors: wrote %s from kube-system/%s", strings.Join(changed, ", "), manifests.RegistryHostsSecret)
		}
	}
	inf := factory.Core().V1().Secrets().Informer()
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: write, UpdateFunc: func(_, obj any) { write(obj) }})
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}

// Write writes the Secret's files, each atomically, and names those whose content changed. A
// path that is not REGISTRY/hosts.toml or REGISTRY/ca.crt is refused before anything is
// written: the Secret cannot make the agent write anywhere else.
func (r *RegistryHosts) Write(s *corev1.Secret) ([]string, error) {
	var files map[string]string
	if err := json.Unmarshal(s.Data[manifests.RegistryHostsKey], &files); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object of files: %w", manifests.RegistryHostsKey, err)
	}
	rels := make([]string, 0, len(files))
	for rel := range files {
		reg, base := path.Split(rel)
		if !cluster.RegistryHost(strings.TrimSuffix(reg, "/")) || (base != machine.RegistryHostsFile && base != machine.RegistryCAFile) {
			return nil, fmt.Errorf("%q is not a registry's hosts.toml or ca.crt", rel)
		}
		rels = append(rels, rel)
	}
	slices.Sort(rels)
	var changed []string
	for _, rel := range rels {
		p := filepath.Join(r.Root, machine.ContainerdCertsDir, filepath.FromSlash(rel))
		old, err := os.ReadFile(p)
		if err == nil && string(old) == files[rel] {
			continue
		}
		if err := fsutil.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return changed, err
		}
		// hosts.toml may hold a mirror's credentials; the CA is public.
		mode := os.FileMode(0o600)
		if path.Base(rel) == machine.RegistryCAFile {
			mode = 0o644
		}
		if err := fsutil.WriteFile(p, []byte(files[rel]), mode); err != nil {
			return changed, err
		}
		changed = append(changed, rel)
	}
	return changed, nil
}
