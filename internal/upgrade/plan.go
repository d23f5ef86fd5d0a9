package upgrade

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Cluster is what a plan is made from: the versions the running cluster reports.
type Cluster struct {
	// Name is the cluster's name.
	Name string
	// APIServer is the API server's version (/version's gitVersion).
	APIServer string
	// Master is the master's node name; Kubelets holds every node's kubelet version by name,
	// the master's included.
	Master   string
	Kubelets map[string]string
	// Image is the image the machines will boot from and ImageRelease the release it says it
	// holds ("" if it does not say).
	Image, ImageRelease string
	// Changed, when not nil, says for each machine what differs between what it booted and
	// what it would boot now ("config", "image", "config and image"; "" for nothing). At the
	// same release only the machines with a difference are replaced: a config change rolls
	// exactly the machines it changes. Nil, or at another release, every machine is replaced.
	Changed map[string]string
}

// Nodes are the names of the nodes other than the master, sorted.
func (c Cluster) Nodes() []string {
	nodes := make([]string, 0, len(c.Kubelets))
	for n := range c.Kubelets {
		if n != c.Master {
			nodes = append(nodes, n)
		}
	}
	sort.Strings(nodes)
	return nodes
}

// StepKind names what a step does.
type StepKind string

const (
	// Snapshot saves an etcd snapshot to the host before anything is replaced.
	Snapshot StepKind = "snapshot"
	// ReplaceMaster gives the master a new root from the image, keeping its etcd disk, and
	// waits for phase 3.
	ReplaceMaster StepKind = "replace-master"
	// ReplaceNode cordons and drains a node, replaces it, waits until it is Ready and its
	// checks pass, and uncordons it.
	ReplaceNode StepKind = "replace-node"
	// Addons waits until the add-ons the new master's agent applied have rolled out: every
	// kube-system DaemonSet and Deployment at its current template.
	Addons StepKind = "addons"
)

// Step is one step of a plan, done in order.
type Step struct {
	Kind StepKind `json:"kind"`
	// Machine is the machine the step replaces ("" for the others).
	Machine string `json:"machine,omitempty"`
	// From is the machine's version now (a kubelet's, or the API server's for the master).
	From string `json:"from,omitempty"`
}

// Plan is an upgrade's whole course: the control plane first, then the nodes one at a time,
// then the add-ons.
type Plan struct {
	Cluster string `json:"cluster"`
	From    string `json:"from"`
	To      string `json:"to"`
	Image   string `json:"image,omitempty"`
	// Changed names, at the same release, the machines replaced and why ("node-1 (config)");
	// nil when every machine is replaced.
	Changed []string `json:"changed,omitempty"`
	Steps   []Step   `json:"steps"`
}

// MakePlan checks every skew rule against the cluster and returns the plan to move it to to,
// or the first rule it breaks. Nothing is read or changed: c holds what the caller read.
func MakePlan(c Cluster, to string) (Plan, error) {
	if err := CheckTarget(c.APIServer, to); err != nil {
		return Plan{}, err
	}
	if err := CheckKubelets(c.APIServer, to, c.Kubelets); err != nil {
		return Plan{}, err
	}
	if err := CheckImage(c.Image, c.ImageRelease, to); err != nil {
		return Plan{}, err
	}
	if _, ok := c.Kubelets[c.Master]; !ok {
		return Plan{}, fmt.Errorf("the master %q is not a node of the cluster: is it registered? (kubeup status)", c.Master)
	}
	p := Plan{Cluster: c.Name, From: c.APIServer, To: to, Image: c.Image}
	only := c.APIServer == to && c.Changed != nil
	if only {
		p.Changed = []string{}
	}
	// rolls says whether machine name is replaced, and records why when only some are.
	rolls := func(name string) bool {
		if !only {
			return true
		}
		why := c.Changed[name]
		if why != "" {
			p.Changed = append(p.Changed, name+" ("+why+")")
		}
		return why != ""
	}
	var steps []Step
	if rolls(c.Master) {
		steps = append(steps, Step{Kind: ReplaceMaster, Machine: c.Master, From: c.APIServer})
	}
	for _, n := range c.Nodes() {
		if rolls(n) {
			steps = append(steps, Step{Kind: ReplaceNode, Machine: n, From: c.Kubelets[n]})
		}
	}
	if len(steps) > 0 {
		p.Steps = append([]Step{{Kind: Snapshot}}, steps...)
		p.Steps = append(p.Steps, Step{Kind: Addons})
	}
	return p, nil
}

// Print writes the plan for people, one numbered line per step.
func (p Plan) Print(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "upgrade plan for cluster %s: %s -> %s", p.Cluster, p.From, p.To)
	if p.From == p.To {
		switch {
		case p.Changed == nil:
			b.WriteString(" (the same release: every machine is replaced from the image)")
		case len(p.Changed) == 0:
			b.WriteString(" (the same release, and every machine boots the config and image it has: nothing to do)")
		default:
			fmt.Fprintf(&b, " (the same release: the machines whose config or image changed are replaced: %s)", strings.Join(p.Changed, ", "))
		}
	}
	b.WriteString("\n")
	if p.Image != "" {
		fmt.Fprintf(&b, "  image: %s\n", p.Image)
	}
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "  %d. ", i+1)
		switch s.Kind {
		case Snapshot:
			b.WriteString("save an etcd snapshot to the host (kubeup etcd snapshot save)")
		case ReplaceMaster:
			fmt.Fprintf(&b, "replace %s, the master (%s), with a new root from the image, keeping its etcd disk; wait for phase 3; on failure go back to the old root", s.Machine, s.From)
		case ReplaceNode:
			fmt.Fprintf(&b, "node %s (%s): cordon, drain (honouring PodDisruptionBudgets), replace, wait until Ready and checked, uncordon", s.Machine, s.From)
		case Addons:
			fmt.Fprintf(&b, "wait for the add-ons of %s to roll out on every machine", p.To)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
