// Package adversarial feeds kubeup's commands the input an attacker or a careless user would:
// broken, hostile and huge cluster configs, and hostile requests to the PXE server. Each case
// must end in a clear error that names the file and the field (a config), or a 4xx and a log
// line (a request), and nothing written: the bundle and output directories of an earlier good
// run are compared before and after.
package adversarial
