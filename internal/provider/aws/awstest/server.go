package awstest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Server is the stand-in. Its zero value is not usable: call New.
type Server struct {
	*httptest.Server
	// Region is reported in zone names (<region>a) and ARNs.
	Region string
	// PageSize is how many items a Describe call returns at most per page when the caller
	// gives no smaller MaxResults (2: small enough that every test pages).
	PageSize int

	mu        sync.Mutex
	seq       int
	allocated int      // AllocateAddress calls so far
	launchIPs int      // public addresses given at launch so far
	calls     []string // every operation called, in order
	failures  map[string]apiError
	tokens    map[string]tokenUse

	vpcs      map[string]*vpc
	subnets   map[string]*subnet
	igws      map[string]*igw
	routes    map[string]*routeTable
	groups    map[string]*securityGroup
	volumes   map[string]*volume
	addresses map[string]*address
	instances map[string]*instance
	templates map[string]*launchTemplate
	images    map[string]*image
	asgs      map[string]*asGroup
	refreshes []*refresh // in the order they started
	roles     map[string]*role
	profiles  map[string]*profile
	buckets   map[string]*bucket
}

// New starts a stand-in; it is closed when the test ends.
func New(t interface{ Cleanup(func()) }, region string) *Server {
	s := &Server{Region: region, PageSize: 2, failures: map[string]apiError{}, tokens: map[string]tokenUse{},
		vpcs: map[string]*vpc{}, subnets: map[string]*subnet{}, igws: map[string]*igw{}, routes: map[string]*routeTable{},
		groups: map[string]*securityGroup{}, volumes: map[string]*volume{}, addresses: map[string]*address{},
		instances: map[string]*instance{}, templates: map[string]*launchTemplate{}, images: map[string]*image{}, asgs: map[string]*asGroup{},
		roles: map[string]*role{}, profiles: map[string]*profile{}, buckets: map[string]*bucket{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// apiError is an error as AWS answers it.
type apiError struct {
	Status        int
	Code, Message string
}

// Fail makes the next calls of operation (e.g. "RunInstances") fail with code until Unfail.
func (s *Server) Fail(operation, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	status := http.StatusBadRequest
	if strings.Contains(code, "Unauthorized") || code == "AccessDenied" {
		status = http.StatusForbidden
	}
	s.failures[operation] = apiError{status, code, message}
}

// Unfail ends Fail for operation.
func (s *Server) Unfail(operation string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failures, operation)
}

// Replayed marks, in Calls, a call that EC2 answered from its ClientToken: the SDK retried a
// call whose answer it lost (a reset connection on a loaded machine), and nothing changed.
const Replayed = " (replayed)"

// Calls lists every operation called so far, in order; a replay ends in Replayed.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// Signatures are not verified (see doc.go), but an unsigned request is refused as AWS does.
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=") {
		http.Error(w, "missing SigV4 Authorization", http.StatusForbidden)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method == http.MethodPost && r.URL.Path == "/" {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.query(w, q(r.PostForm))
		return
	}
	s.s3(w, r)
}

// query serves the query protocols (EC2, Auto Scaling, IAM), told apart by Version.
func (s *Server) query(w http.ResponseWriter, in q) {
	action := in.get("Action")
	s.calls = append(s.calls, action)
	var ns string
	var handlers map[string]func(q) (*reply, *apiError)
	switch in.get("Version") {
	case ec2Version:
		ns, handlers = "http://ec2.amazonaws.com/doc/"+ec2Version+"/", s.ec2Handlers()
	case asgVersion:
		ns, handlers = "http://autoscaling.amazonaws.com/doc/"+asgVersion+"/", s.asgHandlers()
	case iamVersion:
		ns, handlers = "https://iam.amazonaws.com/doc/"+iamVersion+"/", s.iamHandlers()
	default:
		writeQueryError(w, in.get("Version"), apiError{400, "InvalidAction", "unknown Version " + in.get("Version")}, s.requestID())
		return
	}
	if e, ok := s.failures[action]; ok {
		writeQueryError(w, in.get("Version"), e, s.requestID())
		return
	}
	h, ok := handlers[action]
	if !ok {
		writeQueryError(w, in.get("Version"), apiError{400, "InvalidAction", "the stand-in does not implement " + action}, s.requestID())
		return
	}
	// EC2's idempotency: the same ClientToken with the same parameters answers as the first
	// call did, with other parameters it is refused.
	token := in.get("ClientToken")
	if token != "" {
		if use, ok := s.tokens[action+"\x00"+token]; ok {
			if use.params != in.fingerprint() {
				writeQueryError(w, in.get("Version"), apiError{400, "IdempotentParameterMismatch",
					"The client token you have provided is associated with a resource that is already deleted or has different parameters."}, s.requestID())
				return
			}
			// An SDK retry after a lost answer, not a second operation.
			s.calls[len(s.calls)-1] = action + Replayed
			w.Header().Set("Content-Type", "text/xml")
			w.Write(use.answer)
			return
		}
	}
	rep, e := h(in)
	if e != nil {
		writeQueryError(w, in.get("Version"), *e, s.requestID())
		return
	}
	body := rep.render(action, ns, in.get("Version"), s.requestID())
	if token != "" {
		s.tokens[action+"\x00"+token] = tokenUse{in.fingerprint(), body}
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Write(body)
}

type tokenUse struct {
	params string
	answer []byte
}

func (s *Server) id(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s-%017x", prefix, s.seq)
}

func (s *Server) requestID() string {
	s.seq++
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", s.seq)
}

// q is a query request's parameters.
type q url.Values

func (v q) get(k string) string { return url.Values(v).Get(k) }

// has says whether any parameter starts with prefix (a structure or list was given).
func (v q) has(prefix string) bool {
	for k := range v {
		if k == prefix || strings.HasPrefix(k, prefix+".") {
			return true
		}
	}
	return false
}

// list returns the prefixes of a list's members: prefix.1, prefix.2, ... (EC2 flattens lists
// so; the AWS query protocol puts .member before the index: pass "Tags.member").
func (v q) list(prefix string) []string {
	var out []string
	for i := 1; v.has(fmt.Sprintf("%s.%d", prefix, i)); i++ {
		out = append(out, fmt.Sprintf("%s.%d", prefix, i))
	}
	return out
}

// strings returns a list of scalars.
func (v q) strings(prefix string) []string {
	var out []string
	for _, p := range v.list(prefix) {
		out = append(out, v.get(p))
	}
	return out
}

// require reports the first missing parameter as AWS does.
func (v q) require(names ...string) *apiError {
	for _, n := range names {
		if !v.has(n) {
			return &apiError{400, "MissingParameter", "The request must contain the parameter " + n}
		}
	}
	return nil
}

// fingerprint identifies the parameters of a call, its ClientToken aside.
func (v q) fingerprint() string {
	keys := make([]string, 0, len(v))
	for k := range v {
		if k != "ClientToken" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%q\n", k, v[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// page cuts items to one page, at most MaxResults (or MaxRecords) or PageSize. keys are the
// items' keys, ascending; a NextToken goes on after the key of the last item answered, so
// that (as with AWS's tokens) items that come or go between pages, as instances do whose state
// moves on with each Describe, neither fail the next page nor make it skip one.
func page[T any](s *Server, in q, items []T, keys []string) ([]T, string, *apiError) {
	size := s.PageSize
	for _, k := range []string{"MaxResults", "MaxRecords"} {
		if n := in.get(k); n != "" {
			var m int
			fmt.Sscan(n, &m)
			if m > 0 && m < size {
				size = m
			}
		}
	}
	start := 0
	if t := in.get("NextToken"); t != "" {
		after, ok := strings.CutPrefix(t, "after-")
		if !ok {
			return nil, "", &apiError{400, "InvalidNextToken", "The token '" + t + "' is invalid"}
		}
		start, _ = slices.BinarySearch(keys, after)
		if start < len(keys) && keys[start] == after {
			start++
		}
	}
	end := min(start+size, len(items))
	next := ""
	if end < len(items) {
		next = "after-" + keys[end-1]
	}
	return items[start:end], next, nil
}
