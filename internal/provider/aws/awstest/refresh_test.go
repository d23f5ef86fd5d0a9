package awstest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"kubeup.dev/kubeup/internal/provider/aws/awstest"
)

// group makes a launch template (version 1: ami-old) and an Auto Scaling group of n instances
// from it at $Latest, in service; it returns the template's ID.
func group(t *testing.T, srv *awstest.Server, name string, n int32) string {
	t.Helper()
	c, as := client(srv), asgClient(srv)
	ctx := context.Background()
	_, sn := network(t, c, "10.20.0.0/24")
	lt, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-old"), InstanceType: ec2types.InstanceTypeT3Small}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(lt.LaunchTemplate.LaunchTemplateId)
	if _, err := as.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name),
		LaunchTemplate: &asgtypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(id), Version: aws.String("$Latest")},
		MinSize:        aws.Int32(n), MaxSize: aws.Int32(n), DesiredCapacity: aws.Int32(n), VPCZoneIdentifier: aws.String(sn)}); err != nil {
		t.Fatal(err)
	}
	// Its instances move on to running, in service.
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Fatal(err)
	}
	return id
}

func members(t *testing.T, as *autoscaling.Client, name string) []asgtypes.Instance {
	t.Helper()
	out, err := as.DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil || len(out.AutoScalingGroups) != 1 {
		t.Fatalf("describe group %s: %v", name, err)
	}
	return out.AutoScalingGroups[0].Instances
}

func TestLifecycleHooksAreCheckedAsAutoScalingDoes(t *testing.T) {
	srv := awstest.New(t, "eu-west-1")
	as := asgClient(srv)
	ctx := context.Background()
	group(t, srv, "nodes", 1)
	for _, c := range []struct {
		in   autoscaling.PutLifecycleHookInput
		code string
	}{
		{autoscaling.PutLifecycleHookInput{LifecycleHookName: aws.String("drain")}, "ValidationError"}, // no transition
		{autoscaling.PutLifecycleHookInput{LifecycleHookName: aws.String("drain"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_STOPPING")}, "ValidationError"},
		{autoscaling.PutLifecycleHookInput{LifecycleHookName: aws.String("drain"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"), HeartbeatTimeout: aws.Int32(10)}, "ValidationError"},
		{autoscaling.PutLifecycleHookInput{LifecycleHookName: aws.String("drain"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"), DefaultResult: aws.String("MAYBE")}, "ValidationError"},
		{autoscaling.PutLifecycleHookInput{LifecycleHookName: aws.String("boot"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING")}, "InvalidAction"}, // not modelled
	} {
		in := c.in
		in.AutoScalingGroupName = aws.String("nodes")
		if _, err := as.PutLifecycleHook(ctx, &in); code(err) != c.code {
			t.Errorf("PutLifecycleHook %+v: %v, want %s", in, err, c.code)
		}
	}
	if _, err := as.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: aws.String("other"), LifecycleHookName: aws.String("drain"),
		LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING")}); code(err) != "ValidationError" {
		t.Errorf("a hook on a group that does not exist: %v", err)
	}
	if _, err := as.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: aws.String("nodes"), LifecycleHookName: aws.String("drain"),
		LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"), HeartbeatTimeout: aws.Int32(600)}); err != nil {
		t.Fatal(err)
	}
	out, err := as.DescribeLifecycleHooks(ctx, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: aws.String("nodes")})
	if err != nil || len(out.LifecycleHooks) != 1 {
		t.Fatalf("describe hooks: %+v, %v", out, err)
	}
	h := out.LifecycleHooks[0]
	if aws.ToInt32(h.HeartbeatTimeout) != 600 || aws.ToString(h.DefaultResult) != "ABANDON" || aws.ToInt32(h.GlobalTimeout) != 60000 {
		t.Errorf("hook: heartbeat %d, default %s, global %d; want 600, ABANDON, 60000", aws.ToInt32(h.HeartbeatTimeout), aws.ToString(h.DefaultResult), aws.ToInt32(h.GlobalTimeout))
	}
	id := aws.ToString(members(t, as, "nodes")[0].InstanceId)
	if _, err := as.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String("nodes"), LifecycleHookName: aws.String("drain"),
		LifecycleActionResult: aws.String("CONTINUE"), InstanceId: aws.String(id)}); code(err) != "ValidationError" {
		t.Errorf("completing the action of an instance that waits for none: %v, want ValidationError", err)
	}
}

func TestInstanceRefreshPreferencesAreChecked(t *testing.T) {
	srv := awstest.New(t, "eu-west-1")
	as := asgClient(srv)
	ctx := context.Background()
	lt := group(t, srv, "nodes", 2)
	start := func(p *asgtypes.RefreshPreferences, d *asgtypes.DesiredConfiguration) error {
		_, err := as.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("nodes"), Preferences: p, DesiredConfiguration: d})
		return err
	}
	at := func(v string) *asgtypes.DesiredConfiguration {
		return &asgtypes.DesiredConfiguration{LaunchTemplate: &asgtypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String(v)}}
	}
	for _, c := range []struct {
		p    *asgtypes.RefreshPreferences
		d    *asgtypes.DesiredConfiguration
		code string
	}{
		{&asgtypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(101)}, nil, "ValidationError"},
		{&asgtypes.RefreshPreferences{MaxHealthyPercentage: aws.Int32(150)}, nil, "ValidationError"}, // a maximum needs a minimum
		{&asgtypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(50), MaxHealthyPercentage: aws.Int32(200)}, nil, "ValidationError"},
		{&asgtypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(100), MaxHealthyPercentage: aws.Int32(99)}, nil, "ValidationError"},
		{&asgtypes.RefreshPreferences{AutoRollback: aws.Bool(true)}, at("$Latest"), "ValidationError"},
		{nil, at("7"), "ValidationError"}, // no such version
		{&asgtypes.RefreshPreferences{CheckpointPercentages: []int32{50, 100}}, nil, "InvalidAction"}, // not modelled
	} {
		if err := start(c.p, c.d); code(err) != c.code {
			t.Errorf("StartInstanceRefresh %+v %+v: %v, want %s", c.p, c.d, err, c.code)
		}
	}
	if err := start(nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := start(nil, nil); code(err) != "InstanceRefreshInProgress" {
		t.Errorf("a second refresh while one is active: %v, want InstanceRefreshInProgress", err)
	}
	if _, err := as.CancelInstanceRefresh(ctx, &autoscaling.CancelInstanceRefreshInput{AutoScalingGroupName: aws.String("nodes")}); err != nil {
		t.Fatal(err)
	}
	out, err := as.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("nodes")})
	if err != nil || len(out.InstanceRefreshes) != 1 || out.InstanceRefreshes[0].Status != asgtypes.InstanceRefreshStatusCancelled {
		t.Fatalf("a cancelled refresh: %+v, %v", out, err)
	}
	if _, err := as.CancelInstanceRefresh(ctx, &autoscaling.CancelInstanceRefreshInput{AutoScalingGroupName: aws.String("nodes")}); code(err) != "ActiveInstanceRefreshNotFound" {
		t.Errorf("cancelling with no refresh active: %v, want ActiveInstanceRefreshNotFound", err)
	}
}

// A refresh onto a new template version, launching first and keeping every old instance in
// service until its replacement serves, each old one held by a terminating hook until the
// caller completes its action: what kubeup's node upgrade on AWS asks for.
func TestInstanceRefreshReplacesThroughTheHook(t *testing.T) {
	srv := awstest.New(t, "eu-west-1")
	c, as := client(srv), asgClient(srv)
	ctx := context.Background()
	lt := group(t, srv, "nodes", 2)
	old := members(t, as, "nodes")
	if _, err := as.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: aws.String("nodes"), LifecycleHookName: aws.String("drain"),
		LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"), HeartbeatTimeout: aws.Int32(600), DefaultResult: aws.String("CONTINUE")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(lt), SourceVersion: aws.String("1"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-new")}}); err != nil {
		t.Fatal(err)
	}
	desired := &asgtypes.DesiredConfiguration{LaunchTemplate: &asgtypes.LaunchTemplateSpecification{LaunchTemplateId: aws.String(lt), Version: aws.String("2")}}
	started, err := as.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("nodes"), DesiredConfiguration: desired,
		Preferences: &asgtypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(100), MaxHealthyPercentage: aws.Int32(150), SkipMatching: aws.Bool(true)}})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	var status asgtypes.InstanceRefreshStatus
	for step := 0; status != asgtypes.InstanceRefreshStatusSuccessful; step++ {
		if step > 40 {
			t.Fatalf("the refresh did not end in 40 steps: %s\n%s", status, strings.Join(seen, "\n"))
		}
		out, err := as.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("nodes"),
			InstanceRefreshIds: []string{aws.ToString(started.InstanceRefreshId)}})
		if err != nil || len(out.InstanceRefreshes) != 1 {
			t.Fatalf("describe the refresh: %+v, %v", out, err)
		}
		r := out.InstanceRefreshes[0]
		status = r.Status
		if status == asgtypes.InstanceRefreshStatusFailed || status == asgtypes.InstanceRefreshStatusCancelled {
			t.Fatalf("the refresh ended %s: %s", status, aws.ToString(r.StatusReason))
		}
		inService := 0
		var states []string
		for _, m := range members(t, as, "nodes") {
			states = append(states, fmt.Sprintf("%s %s v%s", aws.ToString(m.InstanceId), string(m.LifecycleState), aws.ToString(m.LaunchTemplate.Version)))
			switch string(m.LifecycleState) {
			case "InService":
				inService++
			case "Terminating:Wait":
				// The caller drains the node, then lets it go.
				if _, err := as.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String("nodes"),
					LifecycleHookName: aws.String("drain"), LifecycleActionResult: aws.String("CONTINUE"), InstanceId: m.InstanceId}); err != nil {
					t.Fatal(err)
				}
			}
		}
		seen = append(seen, fmt.Sprintf("%s %d%% of %d: %v", status, aws.ToInt32(r.PercentageComplete), aws.ToInt32(r.InstancesToUpdate), states))
		if status == asgtypes.InstanceRefreshStatusInProgress && inService < 2 {
			t.Errorf("fewer than 2 instances in service with MinHealthyPercentage 100: %v", states)
		}
	}
	t.Log(strings.Join(seen, "\n"))
	// The old instances shut down; a DescribeInstances moves them on to terminated.
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Fatal(err)
	}
	now := members(t, as, "nodes")
	if len(now) != 2 {
		t.Fatalf("after the refresh the group has %d instances, want 2", len(now))
	}
	for _, m := range now {
		if aws.ToString(m.LaunchTemplate.Version) != "2" || slices.ContainsFunc(old, func(o asgtypes.Instance) bool { return aws.ToString(o.InstanceId) == aws.ToString(m.InstanceId) }) {
			t.Errorf("after the refresh: %s at version %s, want only new instances at version 2", aws.ToString(m.InstanceId), aws.ToString(m.LaunchTemplate.Version))
		}
	}
	for _, i := range srv.GroupInstances("nodes") {
		isOld := slices.ContainsFunc(old, func(o asgtypes.Instance) bool { return aws.ToString(o.InstanceId) == i.ID })
		if isOld && i.State == "running" || !isOld && i.AMI != "ami-new" {
			t.Errorf("instance %s (old %v): %s, %s", i.ID, isOld, i.State, i.AMI)
		}
	}
	g, err := as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"nodes"}})
	if err != nil || aws.ToString(g.AutoScalingGroups[0].LaunchTemplate.Version) != "2" {
		t.Errorf("the group after the refresh: %v; want it at the desired version 2", err)
	}
	// Nothing differs now: with SkipMatching a second refresh has nothing to replace.
	again, err := as.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("nodes"), DesiredConfiguration: desired,
		Preferences: &asgtypes.RefreshPreferences{SkipMatching: aws.Bool(true)}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		out, err := as.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("nodes"), InstanceRefreshIds: []string{aws.ToString(again.InstanceRefreshId)}})
		if err != nil {
			t.Fatal(err)
		}
		status = out.InstanceRefreshes[0].Status
		if n := aws.ToInt32(out.InstanceRefreshes[0].InstancesToUpdate); status != asgtypes.InstanceRefreshStatusPending && n != 0 {
			t.Errorf("a refresh onto what runs: %d instances to update, want 0", n)
		}
	}
	if status != asgtypes.InstanceRefreshStatusSuccessful {
		t.Errorf("a refresh onto what runs is %s after 3 steps, want Successful", status)
	}
}
