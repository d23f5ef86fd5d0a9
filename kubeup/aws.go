package main

import (
	"context"
	"errors"
	"io"

	"kubeup.dev/kubeup/internal/cluster"
)

// upAWS brings the cluster up on EC2 (internal/provider/aws).
func upAWS(ctx context.Context, out io.Writer, cfg *cluster.Config, state string, opt cloudOptions) error {
	return errors.New("the aws provider is not built yet")
}

// downAWS deletes what upAWS made.
func downAWS(ctx context.Context, out io.Writer, cfg *cluster.Config, state string, opt cloudOptions) error {
	return errors.New("the aws provider is not built yet")
}
