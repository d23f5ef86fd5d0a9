package cluster

import (
	"bytes"
	"embed"
	"fmt"
	"text/template"
)

// starters are the commented configs `kubeup up --provider TARGET` writes when there is no
// cluster config at all (a fresh directory, an empty container volume).
//
//go:embed starters/*.yaml
var starters embed.FS

// StarterFile is where kubeup writes a starter config, in the working directory, and where it
// looks for a config when --config is not given and the default one does not exist.
const StarterFile = "kubeup.yaml"

// StarterValues are what a starter config takes from its surroundings.
type StarterValues struct {
	// Name is the cluster's name.
	Name string
	// Region is the AWS region the SDK's settings name ("" if none: the config then asks for it).
	Region string
	// Bucket is an S3 bucket name of the cluster's own for aws.configURL: bucket names are
	// global, so it carries a random part.
	Bucket string
}

// Starter is the starter config for target.
func Starter(target string, v StarterValues) ([]byte, error) {
	src, err := starters.ReadFile("starters/" + target + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no starter config for target %q: use %s, %s or %s", target, TargetQEMU, TargetAWS, TargetVSphere)
	}
	t, err := template.New(target).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := t.Execute(&out, v); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
