package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// FieldManager owns every field kubeup applies, so a later apply of a changed file takes over
// exactly what kubeup set and nothing a user added.
const FieldManager = "kubeup"

// Applier applies manifest files by server-side apply.
type Applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// NewApplier makes an Applier for the API server cfg points at.
func NewApplier(cfg *rest.Config) (*Applier, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// ApplyResult counts what one apply did.
type ApplyResult struct {
	Objects int
	// Changed counts objects whose resourceVersion moved: created or updated.
	Changed int
}

// ApplyFiles applies the named files of dir in name order.
func (a *Applier) ApplyFiles(ctx context.Context, dir string, names []string) (ApplyResult, error) {
	var total ApplyResult
	sort.Strings(names)
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return total, err
		}
		r, err := a.Apply(ctx, data)
		total.Objects += r.Objects
		total.Changed += r.Changed
		if err != nil {
			return total, fmt.Errorf("%s: %w", n, err)
		}
	}
	return total, nil
}

// Apply server-side-applies every object of a multi-document YAML stream, in order.
func (a *Applier) Apply(ctx context.Context, data []byte) (ApplyResult, error) {
	var res ApplyResult
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return res, nil
			}
			return res, err
		}
		if len(obj.Object) == 0 {
			continue
		}
		changed, err := a.applyOne(ctx, obj)
		if err != nil {
			return res, fmt.Errorf("%s %s: %w", obj.GetKind(), objectName(obj), err)
		}
		res.Objects++
		if changed {
			res.Changed++
		}
	}
}

func (a *Applier) applyOne(ctx context.Context, obj *unstructured.Unstructured) (bool, error) {
	gvk := obj.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		// A kind registered by an earlier object of this run (an APIService, a CRD): look again.
		a.mapper.Reset()
		m, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return false, err
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = a.dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	cur, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if err != nil {
		cur = nil
	}
	out, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if err != nil {
		return false, err
	}
	if cur == nil {
		return true, nil
	}
	// Changed means kubeup's own apply record moved. The resourceVersion is no measure: a
	// controller updating the object's status between the two calls bumps it too. A no-op apply
	// leaves kubeup's managed-fields entry, timestamp included, as it was.
	before, after := appliedBy(cur), appliedBy(out)
	if before == nil && after == nil {
		// Nothing but the name applied (a bare ServiceAccount): no entry is kept to compare.
		return cur.GetResourceVersion() != out.GetResourceVersion(), nil
	}
	return before == nil || after == nil || !before.Time.Equal(after.Time) || !bytes.Equal(fieldsRaw(before), fieldsRaw(after)), nil
}

func fieldsRaw(e *metav1.ManagedFieldsEntry) []byte {
	if e.FieldsV1 == nil {
		return nil
	}
	return e.FieldsV1.GetRawBytes()
}

// appliedBy returns kubeup's server-side-apply entry of an object's managed fields.
func appliedBy(obj *unstructured.Unstructured) *metav1.ManagedFieldsEntry {
	for _, e := range obj.GetManagedFields() {
		if e.Manager == FieldManager && e.Operation == metav1.ManagedFieldsOperationApply && e.Subresource == "" {
			return &e
		}
	}
	return nil
}

func objectName(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return ns + "/" + obj.GetName()
	}
	return obj.GetName()
}
