package agent

// Config tells the agent who it is and what to bring up.
type Config struct {
	Cluster string `json:"cluster"`
	// Machine is empty in a role config (an anonymous fleet member): the agent uses the hostname.
	Machine string `json:"machine,omitempty"`
	Role    string `json:"role"`
	// APIServer is the control-plane endpoint URL.
	APIServer string `json:"apiServer"`
	// Peers are the machines to check reachability against in phase 1.
	Peers []Peer `json:"peers,omitempty"`
	// Master only: where the objects to apply are, in file-name order, and with which identity.
	AddonsDir       string   `json:"addonsDir,omitempty"`
	SuperAdminFiles []string `json:"superAdminFiles,omitempty"` // applied with super-admin.conf (RBAC that admin.conf needs)
	Kubeconfig      string   `json:"kubeconfig,omitempty"`
	SuperKubeconfig string   `json:"superKubeconfig,omitempty"`
	// NodeTokenTTL, master only, turns the node token pool on (pki.bootstrapTokenPool): each
	// token the agent mints is valid this long (Go duration).
	NodeTokenTTL string `json:"nodeTokenTTL,omitempty"`
	// ReportURL is where progress is posted when a PXE server is configured.
	ReportURL string `json:"reportURL,omitempty"`
}

// Peer is another machine of the cluster.
type Peer struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}
