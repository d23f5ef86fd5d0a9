package flannelcni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"kubeup.dev/kubeup/internal/fsutil"
)

// Add sets up a container's network through the delegate and keeps the delegate's config.
func Add(args *skel.CmdArgs) error {
	n, err := LoadNetConf(args.StdinData)
	if err != nil {
		return err
	}
	f, err := os.Open(n.SubnetFile)
	if err != nil {
		return fmt.Errorf("read %s (is flanneld running?): %w", n.SubnetFile, err)
	}
	s, err := ParseSubnetEnv(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", n.SubnetFile, err)
	}
	conf, err := DelegateConf(n, s)
	if err != nil {
		return err
	}
	if err := fsutil.MkdirAll(n.DataDir, 0o700); err != nil {
		return err
	}
	if err := fsutil.ReplaceFile(filepath.Join(n.DataDir, args.ContainerID), conf, 0o600); err != nil {
		return err
	}
	res, err := invoke.DelegateAdd(context.TODO(), delegateType(conf), conf, nil)
	if err != nil {
		return err
	}
	return types.PrintResult(res, n.CNIVersion)
}

// Del tears down through the same delegate config that Add used. A container Add never saw is
// not an error: DEL must be idempotent.
func Del(args *skel.CmdArgs) error {
	n, err := LoadNetConf(args.StdinData)
	if err != nil {
		return err
	}
	path := filepath.Join(n.DataDir, args.ContainerID)
	conf, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := invoke.DelegateDel(context.TODO(), delegateType(conf), conf, nil); err != nil {
		return err
	}
	return os.Remove(path)
}

// Check asks the delegate to check the container's network.
func Check(args *skel.CmdArgs) error {
	n, err := LoadNetConf(args.StdinData)
	if err != nil {
		return err
	}
	conf, err := os.ReadFile(filepath.Join(n.DataDir, args.ContainerID))
	if err != nil {
		return fmt.Errorf("no delegate config for %s: %w", args.ContainerID, err)
	}
	return invoke.DelegateCheck(context.TODO(), delegateType(conf), conf, nil)
}

func delegateType(conf []byte) string {
	var t struct{ Type string }
	_ = json.Unmarshal(conf, &t)
	return t.Type
}
