package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"

	"github.com/spf13/cobra"
)

// The exit codes, the same for every command.
const (
	ExitOK = 0
	// ExitFailed: the command ran and what it checked failed (a phase, an expired certificate),
	// or an operation failed.
	ExitFailed = 1
	// ExitUsage: bad flags or arguments, or a config file that does not load.
	ExitUsage = 2
	// ExitUnreachable: the cluster or the provider could not be reached.
	ExitUnreachable = 3
)

// ExitCodesHelp is the exit codes' description for --help.
const ExitCodesHelp = `Exit codes: 0 ok; 1 a check or an operation failed; 2 bad usage or a config that does not
load; 3 the cluster or the provider could not be reached.`

// Error carries the exit code its command ends with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Usage marks err as bad usage or bad config (exit 2).
func Usage(err error) error { return wrap(ExitUsage, err) }

// Usagef is Usage of a formatted error.
func Usagef(format string, a ...any) error { return Usage(fmt.Errorf(format, a...)) }

// Unreachable marks err as the cluster or provider not answering (exit 3).
func Unreachable(err error) error { return wrap(ExitUnreachable, err) }

// Failed marks err as a failed check (exit 1); errors nobody marked exit 1 too.
func Failed(err error) error { return wrap(ExitFailed, err) }

func wrap(code int, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err // the innermost mark knows best
	}
	return &Error{Code: code, Err: err}
}

// ExitCode is the code err ends its command with. An unmarked error that comes from the network
// (refused, timed out, no route, DNS) is the cluster or provider being unreachable.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	// Not a TLS or authentication failure: something answered, and it is not a network problem.
	var op *net.OpError
	var dns *net.DNSError
	var ue *url.Error
	if errors.As(err, &op) || errors.As(err, &dns) || errors.As(err, &ue) && ue.Timeout() ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) {
		return ExitUnreachable
	}
	return ExitFailed
}

// Execute runs root and exits with the code of its error, printed as "<name>: <error>". Flag
// errors and wrong arguments are usage errors (2) in every subcommand.
func Execute(root *cobra.Command) {
	code := run(root, os.Stderr)
	os.Exit(code)
}

func run(root *cobra.Command, stderr io.Writer) int {
	root.SilenceUsage = true
	root.SilenceErrors = true
	// Every command's --help ends with the exit codes.
	root.SetUsageTemplate(root.UsageTemplate() + "\n" + ExitCodesHelp + "\n")
	markUsage(root)
	err := root.Execute()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", root.Name(), err)
		if ExitCode(err) == ExitUsage {
			if c, _, ferr := root.Find(os.Args[1:]); ferr == nil && c != nil && !c.Hidden {
				fmt.Fprintf(stderr, "See '%s --help'.\n", c.CommandPath())
			}
		}
	}
	return ExitCode(err)
}

// markUsage makes every command's flag and argument errors usage errors.
func markUsage(c *cobra.Command) {
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return Usage(err) })
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error { return Usage(args(cmd, a)) }
	} else if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		// A group run with an unknown subcommand: cobra would print help and exit 0.
		c.Args = func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				return Usagef("unknown command %q for %q", a[0], cmd.CommandPath())
			}
			return nil
		}
		c.RunE = func(cmd *cobra.Command, _ []string) error {
			cmd.Help()
			return Usagef("%s needs a subcommand", cmd.CommandPath())
		}
	}
	for _, sub := range c.Commands() {
		markUsage(sub)
	}
}
