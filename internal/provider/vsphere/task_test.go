package vsphere

import (
	"errors"
	"testing"

	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25/types"
)

// A failed task's error as vCenter reports it: the localized message and the fault type.
func TestOpErrorFromTask(t *testing.T) {
	err := task.Error{LocalizedMethodFault: &types.LocalizedMethodFault{
		Fault:            &types.InsufficientDisksFault{},
		LocalizedMessage: "Insufficient disk space on datastore 'LocalDS_0'.",
	}}
	e := opError("clone kubeup-debian to", "test-master", err)
	const want = "clone kubeup-debian to test-master: Insufficient disk space on datastore 'LocalDS_0'. (vSphere fault InsufficientDisksFault)"
	if e.Error() != want {
		t.Errorf("error %q, want %q", e, want)
	}
	if !errors.Is(e, err) {
		t.Error("the task's error does not unwrap")
	}
	// Not a vSphere fault: the error's own text.
	if e := opError("power on", "vm", errors.New("connection reset")); e.Error() != "power on vm: connection reset" || e.Fault != "" {
		t.Errorf("plain error: %q fault %q", e, e.Fault)
	}
}
