package qemu

import (
	"os"

	"kubeup.dev/kubeup/internal/machine"
)

// ReadConsole parses machine name's serial log (machine.ReadConsole). The log spans every
// boot; the result describes the latest one.
func (s *Spec) ReadConsole(name string) (machine.Console, error) {
	f, err := os.Open(s.serialLog(name))
	if err != nil {
		return machine.Console{}, err
	}
	defer f.Close()
	return machine.ReadConsole(f)
}
