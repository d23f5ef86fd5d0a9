package upgrade

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"kubeup.dev/kubeup/internal/fsutil"
)

// Progress is an upgrade's record of the steps it finished, kept in a file next to the
// secrets bundle (ProgressFile): a run that was interrupted, or stopped on a failure that was
// then fixed, goes on from the first step not done rather than replacing machines again.
type Progress struct {
	// To is the release the upgrade moves to; a record of another release is not resumed.
	To string `json:"to"`
	// From is the API server's release when the upgrade started (what a rollback goes back to).
	From string `json:"from"`
	// FromImage is the image the master booted before the upgrade (what a rollback boots).
	FromImage string `json:"fromImage,omitempty"`
	// MasterConfig is the config the master booted with before the upgrade: what a rollback
	// gives it back, byte for byte (at the same release, the config before a change). It holds
	// the CA keys; the record is 0600 beside the bundle, which holds them too.
	MasterConfig []byte `json:"masterConfig,omitempty"`
	// Planned are the keys of the steps the first run planned. At the same release the plan
	// names the machines whose config or image differs from what they booted: a machine
	// replaced by an interrupted run boots the new config already, and is still to be finished.
	Planned []string `json:"planned,omitempty"`
	// Done are the keys (Step.Key) of the steps finished, in order.
	Done []string `json:"done"`
	// NodesBefore are the Nodes there were when the nodes' group started to be refreshed (a
	// target whose nodes are a group's members): the new ones are those not among them, also
	// for a run that resumes the refresh.
	NodesBefore []string `json:"nodesBefore,omitempty"`
	// Snapshot is the file the snapshot step saved.
	Snapshot string `json:"snapshot,omitempty"`
	// Finished is set when every step is done: the next upgrade starts afresh.
	Finished *time.Time `json:"finished,omitempty"`
}

// ProgressFile is the progress file's name in the state directory.
const ProgressFile = "upgrade.json"

// Key names a step in a progress record: its kind, and the machine it replaces.
func (s Step) Key() string {
	if s.Machine == "" {
		return string(s.Kind)
	}
	return string(s.Kind) + "/" + s.Machine
}

// Unfinished are the machines of the planned steps not done yet.
func (p *Progress) Unfinished() []string {
	var out []string
	for _, k := range p.Planned {
		if !slices.Contains(p.Done, k) {
			if _, machine, ok := strings.Cut(k, "/"); ok {
				out = append(out, machine)
			}
		}
	}
	return out
}

// Has says whether the step was done.
func (p *Progress) Has(s Step) bool {
	for _, k := range p.Done {
		if k == s.Key() {
			return true
		}
	}
	return false
}

// LoadProgress reads the progress record at path for an upgrade to to. No record, or a
// finished one, starts a new record from from; an unfinished record of another release is an
// error that says how to go on.
func LoadProgress(path, from, to string) (*Progress, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Progress{To: to, From: from}, nil
	} else if err != nil {
		return nil, err
	}
	var p Progress
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %w (the record of an earlier upgrade; remove it only if no upgrade is under way)", path, err)
	}
	if p.Finished != nil {
		return &Progress{To: to, From: from}, nil
	}
	if p.To != to {
		return nil, fmt.Errorf("%s: an upgrade from %s to %s is under way (%d steps done): finish it first with kubeup upgrade --to %s",
			path, p.From, p.To, len(p.Done), p.To)
	}
	return &p, nil
}

// Save writes the record atomically, so that an interruption leaves the last one whole.
func (p *Progress) Save(path string) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.ReplaceFile(path, append(data, '\n'), 0o600)
}

// Remaining is the plan's steps not yet done, in order.
func (p *Progress) Remaining(plan Plan) []Step {
	var out []Step
	for _, s := range plan.Steps {
		if !p.Has(s) {
			out = append(out, s)
		}
	}
	return out
}
