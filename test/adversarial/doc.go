// Package adversarial feeds kubeup's commands the input an attacker or a careless user would:
// broken, hostile and huge cluster configs, hostile requests to the PXE server, and the
// agents' hostile inputs during a CA rotation (the rotation's Secret and annotations on the
// master, kube-root-ca.crt on a node). Each case must end in a clear error that names the file
// and the field (a config), the Secret and its data key (a rotation), or a 4xx and a log line (a
// request), and nothing written: the bundle and output directories of an earlier good run, or
// the machine's files, are compared before and after.
package adversarial
