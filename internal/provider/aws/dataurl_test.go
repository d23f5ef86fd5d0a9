package aws_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"io"
	"net/url"
	"strings"
)

// dataURL decodes an RFC 2397 data URL as Ignition does, gunzipping gzip content.
func dataURL(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, "data:")
	if !ok {
		return nil, errors.New("not a data URL")
	}
	meta, data, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, errors.New("no comma")
	}
	var raw []byte
	var err error
	if strings.HasSuffix(meta, ";base64") {
		raw, err = base64.StdEncoding.DecodeString(data)
	} else {
		var u string
		u, err = url.PathUnescape(data)
		raw = []byte(u)
	}
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	}
	return raw, nil
}
