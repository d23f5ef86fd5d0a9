package awstest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
)

// reply is a successful answer's payload: named elements in order.
type reply struct{ parts []part }

type part struct {
	name string
	v    any
}

func answer() *reply { return &reply{} }

func (r *reply) add(name string, v any) *reply {
	r.parts = append(r.parts, part{name, v})
	return r
}

// render wraps the payload as the protocol does: EC2 puts it straight in <ActionResponse>
// with a requestId; the AWS query protocol puts it in <ActionResult> beside ResponseMetadata.
func (r *reply) render(action, ns, version, reqID string) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	fmt.Fprintf(&b, `<%sResponse xmlns="%s">`, action, ns)
	enc := xml.NewEncoder(&b)
	encode := func() {
		for _, p := range r.parts {
			if err := enc.EncodeElement(p.v, xml.StartElement{Name: xml.Name{Local: p.name}}); err != nil {
				panic(fmt.Sprintf("awstest: encode %s.%s: %v", action, p.name, err))
			}
		}
		enc.Flush()
	}
	if version == ec2Version {
		fmt.Fprintf(&b, "<requestId>%s</requestId>", reqID)
		encode()
	} else {
		fmt.Fprintf(&b, "<%sResult>", action)
		encode()
		fmt.Fprintf(&b, "</%sResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>", action, reqID)
	}
	fmt.Fprintf(&b, "</%sResponse>", action)
	return b.Bytes()
}

// writeQueryError answers an error in the shape of the protocol of version.
func writeQueryError(w http.ResponseWriter, version string, e apiError, reqID string) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	esc := func(s string) string {
		var o bytes.Buffer
		xml.EscapeText(&o, []byte(s))
		return o.String()
	}
	if version == ec2Version {
		fmt.Fprintf(&b, "<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>",
			esc(e.Code), esc(e.Message), reqID)
	} else {
		fmt.Fprintf(&b, "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>",
			esc(e.Code), esc(e.Message), reqID)
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.Status)
	w.Write(b.Bytes())
}

// items is an EC2 list; members a query-protocol list.
type items[T any] struct {
	Items []T `xml:"item"`
}

type members[T any] struct {
	Items []T `xml:"member"`
}

type xTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func errorf(code, format string, args ...any) *apiError {
	status := http.StatusBadRequest
	if code == "NoSuchEntity" {
		status = http.StatusNotFound
	}
	return &apiError{status, code, fmt.Sprintf(format, args...)}
}
