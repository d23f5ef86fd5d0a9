package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// prepullNamespace holds the DaemonSet; the run deletes it once every machine has the images.
const prepullNamespace = "kubeup-prepull"

// prepullCommand parses prepull's flags and writes the manifests.
func prepullCommand(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("prepull", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	repo := fs.String("repo", "", "the repository the machines pull the images from: HOST:PORT/PATH")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("prepull: %w (%s)", err, usage)
	}
	if *repo == "" || fs.NArg() > 0 {
		return fmt.Errorf("prepull: -repo is required, and nothing else (%s)", usage)
	}
	data, err := prepullManifests(*repo)
	if err != nil {
		return err
	}
	_, err = out.Write(data)
	return err
}

// prepullManifests are a namespace and a DaemonSet whose init containers run every test image
// with a Prepull command, each exiting at once, so that once the DaemonSet is rolled out every
// machine it runs on has pulled them: under emulation a first pull of the large images takes
// minutes, longer than the specs wait for their pods. (e2e.test's own --prepull-images also
// wants images the [Conformance] specs do not use, which are not built here.)
func prepullManifests(repo string) ([]byte, error) {
	ns := corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		// Warned at the level enforced (the cluster's default warns at restricted): no pages of
		// warnings.
		ObjectMeta: metav1.ObjectMeta{Name: prepullNamespace, Labels: map[string]string{"pod-security.kubernetes.io/warn": "baseline"}},
	}
	labels := map[string]string{"app": "prepull"}
	var pause string
	var inits []corev1.Container
	for _, t := range testImages {
		if len(t.Prepull) == 0 {
			continue
		}
		ref := t.ref(repo)
		if pause == "" {
			pause = ref
		}
		inits = append(inits, corev1.Container{
			Name:    strings.ReplaceAll(t.Name+"-"+t.Tag, ".", "-"),
			Image:   ref,
			Command: t.Prepull,
		})
	}
	if len(inits) == 0 || !strings.HasPrefix(pause, repo+"/agnhost:") {
		return nil, errors.New("prepull: the test images name no agnhost to pre-pull first")
	}
	ds := appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: "prepull", Namespace: prepullNamespace},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					InitContainers: inits,
					// The pod then waits, doing nothing, in the first image pulled.
					Containers: []corev1.Container{{Name: "pause", Image: pause, Args: []string{"pause"}}},
				},
			},
		},
	}
	var buf bytes.Buffer
	for i, obj := range []any{ns, ds} {
		data, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(data)
	}
	return buf.Bytes(), nil
}
