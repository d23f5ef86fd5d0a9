package aws

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"kubeup.dev/kubeup/internal/ignition"
)

// DrainHook is the nodes' group's lifecycle hook: an instance the group terminates waits in
// Terminating:Wait, still running, until kubeup has drained its node and completes the
// action, or DrainHookTimeout passes.
const (
	DrainHook        = "kubeup-drain"
	DrainHookTimeout = 30 * time.Minute
)

// RefreshNodes makes node (the node role's config, with the node token pool's current token
// as Deliver gives it) and the provider's AMI the nodes' launch template's new default version,
// then replaces every node of the Auto Scaling group with one started from it: an instance
// refresh, launching each replacement before its old instance goes (MinHealthyPercentage 100),
// so the group never has fewer nodes than it should. Each old instance is held by DrainHook;
// held is called with its node's name (drain it there), and then it is let go. A refresh
// already running for the group (an interrupted upgrade) is followed, not started again. It
// returns when the refresh succeeds, or with the reason it failed; if held fails, the refresh
// is cancelled (the held instance still goes when the hook times out: its replacement serves).
func (p *Provider) RefreshNodes(ctx context.Context, node ignition.Config, held func(ctx context.Context, node string) error) error {
	r, err := p.prepared(ctx)
	if err != nil {
		return err
	}
	s := r.s
	s.Node = Config{Name: node.Name, Raw: p.nodeRaw(ctx, node.Raw), Sum: sha256Hex(node.Raw)}
	if err := r.ensureConfigs(ctx, s.Node); err != nil {
		return err
	}
	// The template's new version (a new AMI or node config) first, as up makes it (its
	// security group found again).
	for _, step := range []func(context.Context) error{r.ensureSecurityGroups, r.ensureNodes} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	group := s.name("nodes")
	g, err := r.findGroup(ctx, group)
	if err != nil {
		return err
	}
	if g == nil {
		return fmt.Errorf("aws: cluster %s has no autoscaling group %s in %s: run kubeup up first", s.Cluster, group, r.p.region)
	}
	lt, latest, _, err := r.findTemplate(ctx, s.name(s.Node.Name))
	if err != nil {
		return err
	}
	_, err = r.p.asg.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: aws.String(group), LifecycleHookName: aws.String(DrainHook),
		LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"), HeartbeatTimeout: aws.Int32(int32(DrainHookTimeout.Seconds())),
		DefaultResult: aws.String("CONTINUE")})
	if err != nil {
		return r.wrap("PutLifecycleHook", "autoscaling group "+group, err)
	}
	id, err := r.activeRefresh(ctx, group)
	if err != nil {
		return err
	}
	if id == "" {
		// One node more than the group's size at a time: the percentage that makes one.
		desired := max(aws.ToInt32(g.DesiredCapacity), 1)
		out, err := r.p.asg.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String(group),
			DesiredConfiguration: &asgtypes.DesiredConfiguration{LaunchTemplate: &asgtypes.LaunchTemplateSpecification{
				LaunchTemplateId: aws.String(lt), Version: aws.String(strconv.FormatInt(latest, 10))}},
			Preferences: &asgtypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(100), MaxHealthyPercentage: aws.Int32(100 + (100+desired-1)/desired),
				SkipMatching: aws.Bool(true)}})
		if err != nil {
			return r.wrap("StartInstanceRefresh", "autoscaling group "+group, err)
		}
		id = aws.ToString(out.InstanceRefreshId)
		fmt.Fprintf(r.p.out, "nodes: instance refresh %s of %s started (launch template %s version %d)\n", id, group, lt, latest)
	} else {
		fmt.Fprintf(r.p.out, "nodes: instance refresh %s of %s is running already: following it\n", id, group)
	}
	delay := r.p.poll
	if delay == 0 {
		delay = 15 * time.Second
	}
	released := map[string]bool{}
	last := ""
	for {
		out, err := r.p.asg.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(group),
			InstanceRefreshIds: []string{id}})
		if err != nil {
			return r.wrap("DescribeInstanceRefreshes", "autoscaling group "+group, err)
		}
		if len(out.InstanceRefreshes) != 1 {
			return fmt.Errorf("aws: instance refresh %s of %s: not found", id, group)
		}
		ir := out.InstanceRefreshes[0]
		if now := fmt.Sprintf("%s %d%% of %d", ir.Status, aws.ToInt32(ir.PercentageComplete), aws.ToInt32(ir.InstancesToUpdate)); now != last {
			fmt.Fprintf(r.p.out, "nodes: instance refresh %s\n", now)
			last = now
		}
		switch ir.Status {
		case asgtypes.InstanceRefreshStatusSuccessful:
			return nil
		case asgtypes.InstanceRefreshStatusFailed, asgtypes.InstanceRefreshStatusCancelled, asgtypes.InstanceRefreshStatusRollbackSuccessful,
			asgtypes.InstanceRefreshStatusRollbackFailed:
			return fmt.Errorf("aws: instance refresh %s of %s ended %s: %s", id, group, ir.Status, aws.ToString(ir.StatusReason))
		}
		g, err := r.findGroup(ctx, group)
		if err != nil {
			return err
		}
		for _, m := range g.Instances {
			iid := aws.ToString(m.InstanceId)
			if m.LifecycleState != asgtypes.LifecycleStateTerminatingWait || released[iid] {
				continue
			}
			node, err := r.nodeName(ctx, iid)
			if err != nil {
				return err
			}
			fmt.Fprintf(r.p.out, "nodes: %s (%s) is held for its drain\n", node, iid)
			if err := held(ctx, node); err != nil {
				if _, cerr := r.p.asg.CancelInstanceRefresh(ctx, &autoscaling.CancelInstanceRefreshInput{AutoScalingGroupName: aws.String(group)}); cerr != nil {
					err = errors.Join(err, r.wrap("CancelInstanceRefresh", "autoscaling group "+group, cerr))
				}
				return fmt.Errorf("node %s: %w (the instance refresh is cancelled; %s still goes within %v, its hook's timeout, and its replacement serves)", node, err, iid, DrainHookTimeout)
			}
			_, err = r.p.asg.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String(group),
				LifecycleHookName: aws.String(DrainHook), LifecycleActionResult: aws.String("CONTINUE"), InstanceId: aws.String(iid)})
			if err != nil {
				return r.wrap("CompleteLifecycleAction", "instance "+iid, err)
			}
			released[iid] = true
			fmt.Fprintf(r.p.out, "nodes: %s drained, its instance %s goes\n", node, iid)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("aws: instance refresh %s of %s: %w (it goes on; run the upgrade again to follow it)", id, group, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// activeRefresh is the group's instance refresh that is pending or in progress ("" if none).
func (r *Run) activeRefresh(ctx context.Context, group string) (string, error) {
	pg := autoscaling.NewDescribeInstanceRefreshesPaginator(r.p.asg, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(group)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return "", r.wrap("DescribeInstanceRefreshes", "autoscaling group "+group, err)
		}
		for _, ir := range page.InstanceRefreshes {
			if ir.Status == asgtypes.InstanceRefreshStatusPending || ir.Status == asgtypes.InstanceRefreshStatusInProgress {
				return aws.ToString(ir.InstanceRefreshId), nil
			}
		}
	}
	return "", nil
}

// nodeName is the name a node's kubelet registers: its instance's private DNS name's host part.
func (r *Run) nodeName(ctx context.Context, id string) (string, error) {
	out, err := r.p.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return "", r.wrap("DescribeInstances", "instance "+id, err)
	}
	for _, res := range out.Reservations {
		for _, in := range res.Instances {
			if name, _, _ := strings.Cut(aws.ToString(in.PrivateDnsName), "."); name != "" {
				return name, nil
			}
		}
	}
	return "", fmt.Errorf("aws: instance %s has no private DNS name to find its node by", id)
}
