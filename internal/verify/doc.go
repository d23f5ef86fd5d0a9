// Package verify checks the exit criteria of the bring-up phases (3, 4.1, 4.2, 5 and 6; `kubeup verify --help` lists them) against
// a running cluster with client-go. Every check returns PASS or FAIL with the evidence it saw
// and, on FAIL, a hint where to look. Checks create what they need in their own namespace and
// remove it afterwards.
package verify
