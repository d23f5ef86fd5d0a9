package cluster

import (
	"errors"
	"fmt"
	"strings"

	butane "github.com/coreos/butane/config"
	"github.com/coreos/butane/config/common"
	errs "github.com/coreos/ignition/v2/config/shared/errors"
	"github.com/coreos/ignition/v2/config/v3_4"
	"github.com/coreos/ignition/v2/config/v3_4/types"
	"go.yaml.in/yaml/v3"
)

// DefaultButaneHeader is added to a snippet that names no variant: fcos 1.5.0 is the Butane
// spec that translates to Ignition 3.4.0, the spec kubeup emits.
const DefaultButaneHeader = "variant: fcos\nversion: 1.5.0\n"

// TranslateButane translates a user's Butane snippet with Butane itself and parses the result as
// an Ignition 3.4.0 config. Butane warnings are errors: a snippet that half-applies is worse
// than one that is refused.
func TranslateButane(src string) (types.Config, error) {
	var head struct {
		Variant string `yaml:"variant"`
	}
	if err := yaml.Unmarshal([]byte(src), &head); err != nil {
		return types.Config{}, fmt.Errorf("butane snippet is not YAML: %w", err)
	}
	if head.Variant == "" {
		// Appended, not prepended: a snippet that starts with "---" would otherwise become a
		// second document that Butane silently ignores, and Butane's line numbers stay the
		// snippet's own.
		src = strings.TrimSuffix(src, "\n") + "\n" + DefaultButaneHeader
	}
	out, rep, err := butane.TranslateBytes([]byte(src), common.TranslateBytesOptions{Raw: true})
	if err != nil {
		if len(rep.Entries) > 0 {
			return types.Config{}, fmt.Errorf("butane: %s", strings.TrimSpace(rep.String()))
		}
		return types.Config{}, fmt.Errorf("butane: %w", err)
	}
	if len(rep.Entries) > 0 {
		return types.Config{}, fmt.Errorf("butane warnings: %s", strings.TrimSpace(rep.String()))
	}
	cfg, prep, err := v3_4.Parse(out)
	if err != nil {
		if errors.Is(err, errs.ErrUnknownVersion) || errors.Is(err, errs.ErrInvalidVersion) {
			return types.Config{}, fmt.Errorf("the snippet translates to an Ignition spec other than 3.4.0 (%v); use variant fcos 1.5.0 or flatcar 1.1.0", err)
		}
		return types.Config{}, fmt.Errorf("ignition: %w", err)
	}
	if len(prep.Entries) > 0 {
		return types.Config{}, fmt.Errorf("ignition: %s", strings.TrimSpace(prep.String()))
	}
	return cfg, nil
}
