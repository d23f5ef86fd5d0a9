package pxe

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"
	"k8s.io/apimachinery/pkg/util/wait"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
)

// Options configure a Server.
type Options struct {
	// ConfigFile is the cluster config: its machines (name, role, MAC, UUID, serial) and os.
	ConfigFile string
	// IgnitionDir holds ignition-gen's output: <machine>.ign, and <role>.ign for DefaultRole.
	IgnitionDir string
	// AssetsDir holds each OS's boot files under <os>/ (see OSes).
	AssetsDir string
	// BaseURL is this server's plain-HTTP address as machines reach it (http://10.0.0.1:8080);
	// TLSBaseURL its HTTPS one, whose certificate chains to CA.
	BaseURL, TLSBaseURL string
	// CA is the cluster CA (PEM) that pointer configs trust for the HTTPS fetch.
	CA []byte
	// DefaultRole, when set (node, the only role allowed), gives unknown machines that role's
	// config. Off by default: a machine not in the cluster config gets nothing. A role config
	// holding a private key is refused, at start and at every boot.
	DefaultRole string
	// ReadTimeout bounds how long a client may take to send a request, body included
	// (default 30s): stalled uploads cannot hold the server's connections.
	ReadTimeout time.Duration
	// TokenTTL bounds how long after its script a machine may fetch its config (default 10m).
	TokenTTL time.Duration
	// Reuse lets a token fetch its config again until it expires; by default it works once.
	Reuse bool
	// AnyAddress lets the config be fetched from another address than the one that got the
	// script; by default the two must match (a machine keeps its DHCP lease from iPXE to Ignition).
	AnyAddress bool
	// ReportsFile, if set, keeps every progress report as a JSON line.
	ReportsFile string
	// TokensFile, if set, keeps the outstanding tokens (0600) across restarts: a machine that
	// got its script before the server restarted still gets its config after.
	TokensFile string
	// NodeTokens, if set, gives the node pool's current bootstrap token: every node config is
	// served with it in its bootstrap kubeconfig instead of the token ignition-gen rendered
	// (pki.bootstrapTokenPool, docs/bootstrap-tokens.md). Without a valid token, node
	// machines get a 503 rather than a config that cannot join.
	NodeTokens NodeTokens
	Log        *slog.Logger
}

// Server serves boot scripts, assets, pointer configs and reports over HTTP (Handler), and the
// real configs over HTTPS (TLSHandler).
type Server struct {
	opt     Options
	cluster *configFile
	configs *configs
	tokens  *tokens
	reports *reports
	// nodeTokens caches node configs patched with the current node token.
	nodeTokens withNodeToken
	now        func() time.Time
}

// New checks the options and makes a server; nothing is listening yet.
func New(opt Options) (*Server, error) {
	if opt.BaseURL == "" || opt.TLSBaseURL == "" {
		return nil, errors.New("pxe: the server's HTTP and HTTPS base URLs are required")
	}
	if !strings.HasPrefix(opt.TLSBaseURL, "https://") {
		return nil, fmt.Errorf("pxe: %s: configs are only served over https://", opt.TLSBaseURL)
	}
	if len(opt.CA) == 0 {
		return nil, errors.New("pxe: the cluster CA is required: pointer configs trust only it")
	}
	if opt.DefaultRole != "" && opt.DefaultRole != cluster.RoleNode {
		return nil, fmt.Errorf("pxe: default role %q: only %s: a machine the server does not know gets at most a node's config, which holds no key",
			opt.DefaultRole, cluster.RoleNode)
	}
	if opt.TokenTTL == 0 {
		opt.TokenTTL = 10 * time.Minute
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = 30 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	opt.BaseURL = strings.TrimSuffix(opt.BaseURL, "/")
	opt.TLSBaseURL = strings.TrimSuffix(opt.TLSBaseURL, "/")
	s := &Server{opt: opt, cluster: &configFile{path: opt.ConfigFile}, configs: &configs{dir: opt.IgnitionDir},
		tokens: newTokens(), reports: &reports{file: opt.ReportsFile}, now: time.Now}
	if _, err := s.cluster.table(); err != nil {
		return nil, fmt.Errorf("pxe: %w", err)
	}
	if opt.DefaultRole != "" {
		if _, err := s.roleConfig(opt.DefaultRole); err != nil {
			return nil, fmt.Errorf("pxe: default role %s: %w", opt.DefaultRole, err)
		}
	}
	if opt.TokensFile != "" {
		dropped, err := s.tokens.load(opt.TokensFile, s.now(), func(name string) ([]byte, error) {
			data, _, err := s.servedConfig(context.Background(), name)
			return data, err
		})
		if err != nil {
			return nil, fmt.Errorf("pxe: %s: %w", opt.TokensFile, err)
		}
		if len(dropped) > 0 {
			opt.Log.Warn("tokens dropped: their config changed while the server was down", "machines", dropped)
		}
	}
	return s, nil
}

// saveTokens writes the token table if it changed (Serve calls it as it runs and at the end).
func (s *Server) saveTokens() {
	if s.opt.TokensFile == "" {
		return
	}
	if err := s.tokens.save(s.opt.TokensFile, s.now()); err != nil {
		s.opt.Log.Error("saving tokens", "file", s.opt.TokensFile, "err", err)
	}
}

// Handler serves plain HTTP: /boot.ipxe, /ipxe, /pointer/<token>.ign, /assets/, /report, /reports.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boot.ipxe", s.bootScript)
	mux.HandleFunc("GET /ipxe", s.machineScript)
	mux.HandleFunc("GET /pointer/{token}", s.pointer)
	mux.HandleFunc("GET /assets/{path...}", s.asset)
	mux.HandleFunc("POST /report", s.report)
	mux.HandleFunc("GET /reports", s.listReports)
	return mux
}

// TLSHandler serves HTTPS: /config/<token>, the real configs, and /report and /reports.
func (s *Server) TLSHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config/{token}", s.config)
	// Machines' agents post here (the address they know, metal.pxeServer, is this one), and
	// kubeup status reads it here.
	mux.HandleFunc("POST /report", s.report)
	mux.HandleFunc("GET /reports", s.listReports)
	return mux
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func (s *Server) bootScript(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, chainScript(s.opt.BaseURL))
}

func (s *Server) machineScript(w http.ResponseWriter, r *http.Request) {
	q := Query{MAC: r.FormValue("mac"), UUID: r.FormValue("uuid"), Hostname: r.FormValue("hostname"), Serial: r.FormValue("serial")}
	ip := remoteAddr(r)
	t, err := s.cluster.table()
	if err != nil {
		s.opt.Log.Error("cluster config", "err", err)
		http.Error(w, "cluster config unreadable", http.StatusInternalServerError)
		return
	}
	m, known := t.find(q)
	g := &grant{machine: m.Name, key: m.Name, name: m.Name, expires: s.now().Add(s.opt.TokenTTL)}
	if !known {
		if s.opt.DefaultRole == "" || normMAC(q.MAC) == "" {
			s.opt.Log.Warn("script refused: unknown machine", "from", ip, "query", q.String())
			http.NotFound(w, r)
			return
		}
		g.name = s.opt.DefaultRole
		g.machine = s.opt.DefaultRole + " (" + normMAC(q.MAC) + ")"
		g.key, g.anonymous = "mac "+normMAC(q.MAC), true
		if _, err := s.roleConfig(g.name); err != nil {
			s.opt.Log.Error("script refused: the default role's config", "machine", g.machine, "from", ip, "err", err)
			http.Error(w, "the default role's config is not servable", http.StatusInternalServerError)
			return
		}
	}
	raw, sum, err := s.servedConfig(r.Context(), g.name)
	if errors.Is(err, errNoNodeToken) {
		s.opt.Log.Error("script refused: no valid node token", "machine", g.machine, "from", ip, "err", err)
		http.Error(w, "no valid node bootstrap token: is the master's agent keeping the pool?", http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		s.opt.Log.Error("script refused: no config", "machine", g.machine, "from", ip, "err", err)
		http.Error(w, "no config for this machine: run ignition-gen", http.StatusNotFound)
		return
	}
	g.config, g.sum = raw, sum
	if !s.opt.AnyAddress {
		g.ip = ip
	}
	tok := s.tokens.mint(g)
	script, err := machineScript(t.os, s.opt.BaseURL, s.opt.BaseURL+"/pointer/"+tok+".ign", g.machine)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.opt.Log.Info("script", "machine", g.machine, "from", ip, "token", tok[:8])
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, script)
}

// pointer serves the small config that fetches the real one over HTTPS, pinned by its hash.
func (s *Server) pointer(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimSuffix(r.PathValue("token"), ".ign")
	g, why := s.tokens.lookup(tok, s.now(), !s.opt.Reuse)
	if g == nil {
		s.opt.Log.Warn("pointer refused", "from", remoteAddr(r), "token", short(tok), "reason", why)
		http.NotFound(w, r)
		return
	}
	p, err := json.Marshal(ignition.PointerConfig(s.opt.TLSBaseURL+"/config/"+tok, g.sum, s.opt.CA))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.coreos.ignition+json")
	w.Write(p)
}

// config hands a machine its real config: the one its token was minted for, once.
func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	ip := remoteAddr(r)
	g, why := s.tokens.redeem(tok, ip, s.now(), !s.opt.Reuse)
	if g == nil {
		s.opt.Log.Warn("config refused", "from", ip, "token", short(tok), "reason", why)
		http.NotFound(w, r)
		return
	}
	s.opt.Log.Info("config served", "machine", g.machine, "from", ip, "token", short(tok), "bytes", len(g.config))
	w.Header().Set("Content-Type", "application/vnd.coreos.ignition+json")
	w.Write(g.config)
}

func short(tok string) string {
	if len(tok) > 8 {
		return tok[:8]
	}
	return tok
}

// asset serves a boot file with Range requests and an ETag; an *os.File body lets net/http
// use sendfile.
func (s *Server) asset(w http.ResponseWriter, r *http.Request) {
	rel := path.Clean("/" + r.PathValue("path"))
	f, err := os.Open(filepath.Join(s.opt.AssetsDir, filepath.FromSlash(rel)))
	if err != nil {
		s.opt.Log.Warn("asset refused", "from", remoteAddr(r), "path", rel, "reason", "no such file in the assets")
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		s.opt.Log.Warn("asset refused", "from", remoteAddr(r), "path", rel, "reason", "not a regular file")
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s %d %d", rel, st.Size(), st.ModTime().UnixNano()))
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	http.ServeContent(w, r, st.Name(), st.ModTime(), f)
}

// maxConns is how many connections each of the server's listeners serves at once.
const maxConns = 1024

// maxHeaderBytes bounds a request's headers: iPXE, Ignition and the agents send a few hundred
// bytes; net/http answers more with 431 before any handler runs.
const maxHeaderBytes = 16 << 10

// roleConfig checks role's config as an unknown machine would get it: it must hold no key.
func (s *Server) roleConfig(role string) ([]byte, error) {
	raw, _, err := s.configs.getSum(role)
	if err != nil {
		return nil, err
	}
	keys, err := ignition.PrivateKeys(raw)
	if err != nil {
		return nil, fmt.Errorf("%s.ign: %w", role, err)
	}
	if len(keys) > 0 {
		return nil, fmt.Errorf("%s.ign holds private keys (%s): it is not a %s role's config, and would hand them to any machine (fix: render it with ignition-gen --role %s)",
			role, strings.Join(keys, ", "), role, role)
	}
	return raw, nil
}

// Serve runs the HTTP server on plain and the HTTPS server (with tc's certificate) on secure
// until ctx ends.
func (s *Server) Serve(ctx context.Context, plain, secure net.Listener, tc *tls.Config) error {
	secure = tls.NewListener(secure, tc)
	// Requests are small and must arrive in time; responses (kernels, initrds) may take long on
	// a slow link, so there is no write timeout. Idle connections are closed, and each listener
	// takes at most maxConns at once, so a flood cannot use up the process's file descriptors.
	servers := []*http.Server{
		{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: s.opt.ReadTimeout, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: maxHeaderBytes},
		{Handler: s.TLSHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: s.opt.ReadTimeout, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: maxHeaderBytes},
	}
	plain, secure = netutil.LimitListener(plain, maxConns), netutil.LimitListener(secure, maxConns)
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	for i, l := range []net.Listener{plain, secure} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := servers[i].Serve(l); !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	// The token table is saved a few times a second while it changes, and once more at the end.
	saving, stopSaving := context.WithCancel(ctx)
	var saver wait.Group
	saver.StartWithContext(saving, func(ctx context.Context) {
		_ = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, false, func(context.Context) (bool, error) {
			s.saveTokens()
			return false, nil // until Serve ends
		})
	})
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	stopSaving()
	saver.Wait()
	for _, srv := range servers {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(sctx)
		cancel()
	}
	wg.Wait()
	s.saveTokens()
	return err
}
