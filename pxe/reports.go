package pxe

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
)

// reports keeps the machines' progress reports.
type reports struct {
	file string
	mu   sync.Mutex
	last map[string][]json.RawMessage
	// others are the reporting machines the cluster config does not name.
	others map[string]bool
}

// maxReports per machine are kept in memory (the file keeps them all).
const maxReports = 20

// maxOthers is how many machines that the cluster config does not name may report (those a
// default role booted): past it, reports from new names are refused, so made-up names cannot
// fill the server's memory or its /reports.
const maxOthers = 256

// maxReport bounds one report: an agent's is a few kilobytes.
const maxReport = 64 << 10

// errTooMany refuses a report from one machine too many.
var errTooMany = errors.New("too many machines the cluster config does not name have reported")

func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReport))
	var rep struct {
		Machine string `json:"machine"`
	}
	if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
		s.opt.Log.Warn("report refused", "from", remoteAddr(r), "reason", "larger than 64 KiB")
		http.Error(w, "a report is at most 64 KiB", http.StatusRequestEntityTooLarge)
		return
	}
	if err == nil {
		err = json.Unmarshal(body, &rep)
	}
	if err != nil || rep.Machine == "" {
		s.opt.Log.Warn("report refused", "from", remoteAddr(r), "reason", "not a JSON object with a machine field")
		http.Error(w, "a report is a JSON object with a machine field", http.StatusBadRequest)
		return
	}
	known := false
	if t, err := s.cluster.table(); err == nil {
		_, known = t.byName[rep.Machine]
	}
	if err := s.reports.add(rep.Machine, known, body); errors.Is(err, errTooMany) {
		s.opt.Log.Warn("report refused", "machine", rep.Machine, "from", remoteAddr(r), "err", err)
		http.Error(w, err.Error(), http.StatusTooManyRequests)
		return
	} else if err != nil {
		s.opt.Log.Error("report", "machine", rep.Machine, "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.opt.Log.Info("report", "machine", rep.Machine, "from", remoteAddr(r))
	w.WriteHeader(http.StatusNoContent)
}

func (rs *reports) add(machine string, known bool, body []byte) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.last == nil {
		rs.last = map[string][]json.RawMessage{}
		rs.others = map[string]bool{}
	}
	if _, seen := rs.last[machine]; !seen && !known {
		if len(rs.others) >= maxOthers {
			return fmt.Errorf("%w (%d): %s is refused", errTooMany, maxOthers, machine)
		}
		rs.others[machine] = true
	}
	l := append(rs.last[machine], json.RawMessage(body))
	if len(l) > maxReports {
		l = l[len(l)-maxReports:]
	}
	rs.last[machine] = l
	if rs.file == "" {
		return nil
	}
	f, err := os.OpenFile(rs.file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(json.RawMessage(body)) // compact: one report, one line
	_, err = f.Write(append(line, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// listReports returns every machine's recent reports, for kubeup status.
func (s *Server) listReports(w http.ResponseWriter, r *http.Request) {
	s.reports.mu.Lock()
	data, err := json.Marshal(s.reports.last)
	s.reports.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
}
