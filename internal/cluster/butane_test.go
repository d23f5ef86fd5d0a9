package cluster

import (
	"reflect"
	"strings"
	"testing"
)

const motd = `storage:
  files:
    - path: /etc/motd
      mode: 0644
      contents:
        inline: |
          hello
`

func TestTranslateButaneDefaultHeader(t *testing.T) {
	without, err := TranslateButane(motd)
	if err != nil {
		t.Fatal(err)
	}
	with, err := TranslateButane(DefaultButaneHeader + motd)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(with, without) {
		t.Errorf("a snippet without header differs from the same with the default header:\n%+v\n%+v", without, with)
	}
	if without.Ignition.Version != "3.4.0" {
		t.Errorf("Ignition version %q", without.Ignition.Version)
	}
	if len(without.Storage.Files) != 1 || *without.Storage.Files[0].Contents.Source != "data:,hello%0A" {
		t.Errorf("files = %+v", without.Storage.Files)
	}
}

// A snippet that starts with a document marker ("---") is translated, not silently dropped.
func TestTranslateButaneDocumentStart(t *testing.T) {
	cfg, err := TranslateButane("---\n" + motd)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Storage.Files) != 1 {
		t.Errorf("snippet after --- was dropped: files = %+v", cfg.Storage.Files)
	}
	if _, err := TranslateButane("---\nstorage:\n  files:\n    - path: relative\n"); err == nil {
		t.Error("invalid snippet after --- accepted")
	}
}

// Butane's line numbers are the snippet's own, not shifted by the added header.
func TestTranslateButaneErrorLine(t *testing.T) {
	_, err := TranslateButane("storage:\n  files:\n    - path: relative/motd\n")
	if err == nil || !strings.Contains(err.Error(), "line 3 col") || !strings.Contains(err.Error(), "path not absolute") {
		t.Errorf("error = %v, want path not absolute at line 3", err)
	}
}

func TestTranslateButaneErrors(t *testing.T) {
	for _, src := range []string{
		"storage: [",
		"[]",
		"storage:\n  filez: []\n",         // unknown key: a warning, refused
		"variant: fcos\nversion: 1.6.0\n", // Ignition 3.5.0
		"variant: fcos\nversion: 1.5.0\nfoo: 1\n", // unknown key with header
		"variant: nope\nversion: 1.0.0\n",
	} {
		if _, err := TranslateButane(src); err == nil {
			t.Errorf("%q accepted", src)
		}
	}
}
