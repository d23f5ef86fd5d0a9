package rootfs

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// BuilderID names the artifacts this builder makes.
const BuilderID = "kubeup.rootfs"

// Builder is kubeup-rootfs.
type Builder struct {
	config Config
}

// ConfigSpec is the HCL2 schema (generated: config.hcl2spec.go).
func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return b.config.FlatMapstructure().HCL2Spec() }

// Prepare checks the configuration; nothing is built yet.
func (b *Builder) Prepare(raws ...any) ([]string, []string, error) {
	return nil, nil, b.config.prepare(raws...)
}

// Run makes the root filesystem, runs the template's provisioners in it, and writes the image.
func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, hook packersdk.Hook) (packersdk.Artifact, error) {
	state := new(multistep.BasicStateBag)
	state.Put("config", &b.config)
	state.Put("hook", hook)
	state.Put("ui", ui)
	// The SDK's chroot communicator runs its commands through this; ours need no wrapping.
	state.Put("wrappedCommand", common.CommandWrapper(func(s string) (string, error) { return s, nil }))

	mounts := &stepMount{mounts: b.config.ChrootMounts}
	steps := []multistep.Step{
		&commonsteps.StepOutputDir{Force: b.config.PackerForce, Path: b.config.OutputDirectory},
		&stepRootfs{config: &b.config},
		mounts,
		&stepProvision{},
		&stepUnmount{mounts: mounts},
		&stepDisk{config: &b.config},
	}
	runner := commonsteps.NewRunner(steps, b.config.PackerConfig, ui)
	runner.Run(ctx, state)
	if err, ok := state.GetOk("error"); ok {
		return nil, err.(error)
	}
	if _, ok := state.GetOk(multistep.StateCancelled); ok {
		return nil, errors.New("build was cancelled")
	}
	if _, ok := state.GetOk(multistep.StateHalted); ok {
		return nil, errors.New("build was halted")
	}
	files, ok := state.GetOk("image_files")
	if !ok {
		return nil, fmt.Errorf("no image was written")
	}
	return &Artifact{Dir: b.config.OutputDirectory, files: files.([]string)}, nil
}
