// Package cli holds what kubeup's commands (kubeup, ignition-gen, kubeup-agent) share on the
// command line, so a flag or an exit status means the same thing in each: the exit codes and
// how an error maps to one, the -o formats, and the version command.
package cli
