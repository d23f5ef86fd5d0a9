package qemu

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// qmp runs one command on machine name's QEMU Machine Protocol socket.
func (s *Spec) qmp(name string, command map[string]any) error {
	conn, err := net.DialTimeout("unix", s.qmpSocket(name), 5*time.Second)
	if err != nil {
		return fmt.Errorf("QMP of %s: %w", name, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	read := func() (map[string]any, error) {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return nil, err
			}
			var msg map[string]any
			if err := json.Unmarshal(line, &msg); err != nil {
				return nil, err
			}
			if _, event := msg["event"]; !event {
				return msg, nil
			}
		}
	}
	if _, err := read(); err != nil { // the greeting
		return fmt.Errorf("QMP of %s: %w", name, err)
	}
	for _, cmd := range []map[string]any{{"execute": "qmp_capabilities"}, command} {
		data, _ := json.Marshal(cmd)
		if _, err := conn.Write(append(data, '\n')); err != nil {
			return fmt.Errorf("QMP of %s: %w", name, err)
		}
		msg, err := read()
		if err != nil {
			return fmt.Errorf("QMP of %s: %w", name, err)
		}
		if e, ok := msg["error"]; ok {
			return fmt.Errorf("QMP of %s: %v: %v", name, cmd["execute"], e)
		}
	}
	return nil
}

// Reboot presses Ctrl-Alt-Del on machine name's keyboard: systemd shuts down cleanly and the
// machine boots again, as an operator's reboot would.
func (s *Spec) Reboot(name string) error {
	key := func(k string) map[string]any { return map[string]any{"type": "qcode", "data": k} }
	return s.qmp(name, map[string]any{"execute": "send-key", "arguments": map[string]any{
		"keys": []any{key("ctrl"), key("alt"), key("delete")}}})
}
