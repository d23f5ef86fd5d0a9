package vsphere

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// OpError is a vSphere operation on a VM that failed, with vSphere's fault.
type OpError struct {
	Op, VM string
	// Fault is the fault's type name (InvalidArgument, DuplicateName...); empty when the error
	// was not a vSphere fault (a network error, a cancelled context).
	Fault string
	// Message is vSphere's localized message, or the error's text.
	Message string
	Err     error
}

func (e *OpError) Error() string {
	switch {
	case e.Fault == "":
		return fmt.Sprintf("%s %s: %s", e.Op, e.VM, e.Message)
	case e.Message == "":
		return fmt.Sprintf("%s %s: vSphere fault %s", e.Op, e.VM, e.Fault)
	}
	return fmt.Sprintf("%s %s: %s (vSphere fault %s)", e.Op, e.VM, e.Message, e.Fault)
}

func (e *OpError) Unwrap() error { return e.Err }

// run starts a vSphere task with start, waits for it and returns its result. Both a fault of
// the call and a fault of the task come back as an *OpError naming op and vm.
func run(ctx context.Context, op, vm string, start func(context.Context) (*object.Task, error)) (types.AnyType, error) {
	t, err := start(ctx)
	if err != nil {
		return nil, opError(op, vm, err)
	}
	info, err := t.WaitForResult(ctx)
	if err != nil {
		return nil, opError(op, vm, err)
	}
	return info.Result, nil
}

func opError(op, vm string, err error) *OpError {
	e := &OpError{Op: op, VM: vm, Err: err}
	// The top fault is the one vSphere reports; when it has no message, a cause's message is
	// the best there is.
	fault.In(err, func(f types.BaseMethodFault, msg string, _ []types.LocalizableMessage) bool {
		if e.Fault == "" {
			e.Fault = faultName(f)
		}
		e.Message = message(f, msg)
		return e.Message != ""
	})
	switch {
	case e.Fault == "":
		e.Message = err.Error()
	case e.Message == "":
		// A SOAP fault of the call keeps its message in the error's text.
		e.Message = strings.TrimPrefix(err.Error(), "ServerFaultCode: ")
		if strings.HasPrefix(e.Message, "*types.") {
			e.Message = ""
		}
	}
	return e
}

// message is a fault's localized message without what says nothing: the SOAP prefix, or the Go
// type name that vcsim gives a fault without a message.
func message(f types.BaseMethodFault, msg string) string {
	if msg == fmt.Sprintf("%T", f) {
		return ""
	}
	return strings.TrimPrefix(msg, "ServerFaultCode: ")
}

// faultName is the fault's vSphere type name: types.InvalidArgument → InvalidArgument.
func faultName(f types.BaseMethodFault) string {
	t := reflect.TypeOf(f)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return strings.TrimPrefix(t.Name(), "types.")
}
