package manifests

import (
	"bytes"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// Object is a typed Kubernetes object together with its group/version/kind, which typed Go
// values do not carry by themselves.
type Object struct {
	GVK schema.GroupVersionKind
	Obj runtime.Object
}

// YAML serializes objects as one multi-document YAML stream, in the order given. The apiVersion
// and kind are set from each object's GVK, so callers build plain typed values.
// sigs.k8s.io/yaml goes through encoding/json, whose map keys are sorted: same input, same bytes.
func YAML(objs ...Object) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		o.Obj.GetObjectKind().SetGroupVersionKind(o.GVK)
		b, err := yaml.Marshal(o.Obj)
		if err != nil {
			return nil, fmt.Errorf("serialize %s: %w", o.GVK.Kind, err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// gvk is shorthand for schema.GroupVersionKind in object lists.
func gvk(group, version, kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: group, Version: version, Kind: kind}
}
