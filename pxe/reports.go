package pxe

import (
	"encoding/json"
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
}

// maxReports per machine are kept in memory (the file keeps them all).
const maxReports = 20

func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	var rep struct {
		Machine string `json:"machine"`
	}
	if err == nil {
		err = json.Unmarshal(body, &rep)
	}
	if err != nil || rep.Machine == "" {
		http.Error(w, "a report is a JSON object with a machine field", http.StatusBadRequest)
		return
	}
	if err := s.reports.add(rep.Machine, body); err != nil {
		s.opt.Log.Error("report", "machine", rep.Machine, "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.opt.Log.Info("report", "machine", rep.Machine, "from", remoteAddr(r))
	w.WriteHeader(http.StatusNoContent)
}

func (rs *reports) add(machine string, body []byte) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.last == nil {
		rs.last = map[string][]json.RawMessage{}
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
