package main

import (
	"context"
	"errors"
	"io"

	"kubeup.dev/kubeup/internal/cluster"
)

// upVSphere brings the cluster up on vSphere (internal/provider/vsphere).
func upVSphere(ctx context.Context, out io.Writer, cfg *cluster.Config, state string, opt cloudOptions) error {
	return errors.New("the vsphere provider is not built yet")
}

// downVSphere deletes what upVSphere made.
func downVSphere(ctx context.Context, out io.Writer, cfg *cluster.Config, state string, opt cloudOptions) error {
	return errors.New("the vsphere provider is not built yet")
}
