// Package verify checks the exit criteria of the bring-up phases (DESIGN.md, "The flow") against
// a running cluster with client-go. Every check returns PASS or FAIL with the evidence it saw
// and, on FAIL, a hint where to look. Checks create what they need in their own namespace and
// remove it afterwards.
package verify
