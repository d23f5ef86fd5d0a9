package awstest_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"kubeup.dev/kubeup/internal/provider/aws/awstest"
)

// client is the real SDK's EC2 client pointed at the stand-in.
func client(srv *awstest.Server) *ec2.Client {
	return ec2.New(ec2.Options{Region: srv.Region, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")})
}

// asgClient is the real SDK's Auto Scaling client pointed at the stand-in.
func asgClient(srv *awstest.Server) *autoscaling.Client {
	return autoscaling.New(autoscaling.Options{Region: srv.Region, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")})
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestClientTokens(t *testing.T) {
	srv := awstest.New(t, "eu-west-1")
	c := client(srv)
	ctx := context.Background()
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.0.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	run := func(ami string) (*ec2.RunInstancesOutput, error) {
		return c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(ami), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			SubnetId: sn.Subnet.SubnetId, ClientToken: aws.String("token-1")})
	}
	first, err := run("ami-1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := run("ami-1")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := aws.ToString(first.Instances[0].InstanceId), aws.ToString(again.Instances[0].InstanceId); a != b {
		t.Errorf("same token, same parameters: instances %s and %s, want one", a, b)
	}
	if n := len(srv.Instances()); n != 1 {
		t.Errorf("%d instances after a repeated RunInstances, want 1", n)
	}
	if calls := srv.Calls(); calls[len(calls)-1] != "RunInstances"+awstest.Replayed || calls[len(calls)-2] != "RunInstances" {
		t.Errorf("calls %v: want the repeated RunInstances marked as a replay", calls)
	}
	if _, err := run("ami-2"); code(err) != "IdempotentParameterMismatch" {
		t.Errorf("same token, other parameters: %v, want IdempotentParameterMismatch", err)
	}
}

func TestDescribePagesAndFilters(t *testing.T) {
	srv := awstest.New(t, "eu-west-1")
	c := client(srv)
	ctx := context.Background()
	for i := range 5 {
		tags := []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeVpc,
			Tags: []ec2types.Tag{{Key: aws.String("n"), Value: aws.String(fmt.Sprint(i % 2))}}}}
		if _, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(fmt.Sprintf("10.%d.0.0/24", i)), TagSpecifications: tags}); err != nil {
			t.Fatal(err)
		}
	}
	pages, n := 0, 0
	pg := ec2.NewDescribeVpcsPaginator(c, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{{Name: aws.String("tag:n"), Values: []string{"0"}}}})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		n += len(page.Vpcs)
	}
	if n != 3 || pages != 2 {
		t.Errorf("%d VPCs tagged n=0 in %d pages, want 3 in 2 (page size 2)", n, pages)
	}
	_, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{{Name: aws.String("no-such-filter"), Values: []string{"x"}}}})
	if code(err) != "InvalidParameterValue" {
		t.Errorf("unknown filter: %v", err)
	}
}

func TestRefusesWhatAWSRefuses(t *testing.T) {
	srv := awstest.New(t, "eu-west-1")
	c := client(srv)
	ctx := context.Background()
	vpc, _ := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/24")})
	if _, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.0.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: vpc.Vpc.VpcId}); code(err) != "DependencyViolation" {
		t.Errorf("DeleteVpc with a subnet: %v, want DependencyViolation", err)
	}
	srv.Fail("DescribeVpcs", "UnauthorizedOperation", "You are not authorized to perform this operation.")
	_, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	var oe *smithy.OperationError
	if code(err) != "UnauthorizedOperation" || !errors.As(err, &oe) || oe.Operation() != "DescribeVpcs" {
		t.Errorf("injected failure: %v", err)
	}
}

// network makes a VPC and a subnet, both cidr.
func network(t *testing.T, c *ec2.Client, cidr string) (vpcID, subnetID string) {
	t.Helper()
	ctx := context.Background()
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(cidr)})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(cidr)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(vpc.Vpc.VpcId), aws.ToString(sn.Subnet.SubnetId)
}

func ec2TagMap(tags []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func TestRunInstancesGivesAFreeAddressAndItsName(t *testing.T) {
	srv := awstest.New(t, "us-east-1")
	c := client(srv)
	ctx := context.Background()
	_, sn := network(t, c, "10.0.0.0/24")
	run := func(ip string) (*ec2.RunInstancesOutput, error) {
		in := &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(sn)}
		if ip != "" {
			in.PrivateIpAddress = aws.String(ip)
		}
		return c.RunInstances(ctx, in)
	}
	if _, err := run("10.0.0.5"); err != nil {
		t.Fatal(err)
	}
	// .0-.3 are reserved and .5 is taken: .4, then .6.
	for _, want := range []string{"10.0.0.4", "10.0.0.6"} {
		out, err := run("")
		if err != nil {
			t.Fatal(err)
		}
		i := out.Instances[0]
		if ip, dns := aws.ToString(i.PrivateIpAddress), aws.ToString(i.PrivateDnsName); ip != want || dns != "ip-"+strings.ReplaceAll(want, ".", "-")+".ec2.internal" {
			t.Errorf("instance without PrivateIpAddress: %s %s, want %s and its ec2.internal name", ip, dns, want)
		}
		if len(i.SecurityGroups) != 1 {
			t.Errorf("instance without security groups is in %v, want its VPC's default group", i.SecurityGroups)
		}
	}
	for ip, want := range map[string]string{"10.0.0.3": "InvalidParameterValue", "10.0.0.255": "InvalidParameterValue",
		"10.0.1.9": "InvalidParameterValue", "10.0.0.4": "InvalidIPAddress.InUse"} {
		if _, err := run(ip); code(err) != want {
			t.Errorf("RunInstances at %s: %v, want %s", ip, err, want)
		}
	}
}

func TestElasticIPsAreLoopback(t *testing.T) {
	srv := awstest.New(t, "eu-west-1")
	c := client(srv)
	ctx := context.Background()
	id := runOne(t, c)
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}); err != nil { // pending → running
		t.Fatal(err)
	}
	for n := range 2 {
		a, err := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc})
		if err != nil {
			t.Fatal(err)
		}
		ip := aws.ToString(a.PublicIp)
		if ip != awstest.AddressPlan(n) || !netip.MustParseAddr(ip).IsLoopback() {
			t.Errorf("address %d: %s, want %s, a loopback address", n, ip, awstest.AddressPlan(n))
		}
		if n == 0 {
			if _, err := c.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: a.AllocationId, InstanceId: aws.String(id)}); err != nil {
				t.Fatalf("associate %s: %v", ip, err)
			}
		}
	}
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if ip := aws.ToString(out.Reservations[0].Instances[0].PublicIpAddress); ip != awstest.AddressPlan(0) {
		t.Errorf("instance's public address %q, want %s", ip, awstest.AddressPlan(0))
	}
}

func TestAutoScalingGroupLaunchesAndForceDeleteTerminates(t *testing.T) {
	srv := awstest.New(t, "eu-west-1")
	c, as := client(srv), asgClient(srv)
	ctx := context.Background()
	vpc, sn := network(t, c, "10.10.0.0/24")
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("nodes"), Description: aws.String("nodes"), VpcId: aws.String(vpc)})
	if err != nil {
		t.Fatal(err)
	}
	igw, err := c.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGateway.InternetGatewayId, VpcId: aws.String(vpc)}); err != nil {
		t.Fatal(err)
	}
	data := func(ud string) *ec2types.RequestLaunchTemplateData {
		return &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-node"), InstanceType: ec2types.InstanceTypeT3Small,
			UserData: aws.String(base64.StdEncoding.EncodeToString([]byte(ud))),
			NetworkInterfaces: []ec2types.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest{{DeviceIndex: aws.Int32(0),
				AssociatePublicIpAddress: aws.Bool(true), Groups: []string{aws.ToString(sg.GroupId)}}},
			TagSpecifications: []ec2types.LaunchTemplateTagSpecificationRequest{{ResourceType: ec2types.ResourceTypeInstance,
				Tags: []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String("node")}, {Key: aws.String("role"), Value: aws.String("template")}}}}}
	}
	lt, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("nodes"), LaunchTemplateData: data("version 1")})
	if err != nil {
		t.Fatal(err)
	}
	ltID := lt.LaunchTemplate.LaunchTemplateId
	if _, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: ltID, LaunchTemplateData: data("version 2")}); err != nil {
		t.Fatal(err)
	}
	group := func(name, version string, n int32) error {
		spec := &asgtypes.LaunchTemplateSpecification{LaunchTemplateId: ltID}
		if version != "" {
			spec.Version = aws.String(version)
		}
		_, err := as.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name),
			LaunchTemplate: spec, MinSize: aws.Int32(n), MaxSize: aws.Int32(n), DesiredCapacity: aws.Int32(n), VPCZoneIdentifier: aws.String(sn),
			Tags: []asgtypes.Tag{
				{Key: aws.String("cluster"), Value: aws.String("alpha"), PropagateAtLaunch: aws.Bool(true)},
				{Key: aws.String("role"), Value: aws.String("group"), PropagateAtLaunch: aws.Bool(true)},
				{Key: aws.String("Name"), Value: aws.String(name), PropagateAtLaunch: aws.Bool(false)},
			}})
		return err
	}
	if err := group("bad", "3", 1); code(err) != "ValidationError" {
		t.Errorf("group at a version the template does not have: %v, want ValidationError", err)
	}
	if err := group("nodes", "$Latest", 2); err != nil {
		t.Fatal(err)
	}
	if err := group("defaults", "", 1); err != nil {
		t.Fatal(err)
	}

	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:aws:autoscaling:groupName"), Values: []string{"nodes"}}}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	ips, names := map[string]bool{}, map[string]bool{}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
			ip, dns := aws.ToString(i.PrivateIpAddress), aws.ToString(i.PrivateDnsName)
			ips[ip], names[dns] = true, true
			if p := netip.MustParseAddr(ip); !netip.MustParsePrefix("10.10.0.0/24").Contains(p) || dns != "ip-"+strings.ReplaceAll(ip, ".", "-")+".eu-west-1.compute.internal" {
				t.Errorf("instance %s at %s named %s", aws.ToString(i.InstanceId), ip, dns)
			}
			if pub := aws.ToString(i.PublicIpAddress); pub == "" || !netip.MustParseAddr(pub).IsLoopback() {
				t.Errorf("instance %s: public address %q, want a loopback one", aws.ToString(i.InstanceId), pub)
			}
			if aws.ToString(i.ImageId) != "ami-node" || i.InstanceType != ec2types.InstanceTypeT3Small || aws.ToString(i.SubnetId) != sn {
				t.Errorf("instance %s: %s %s in %s", aws.ToString(i.InstanceId), aws.ToString(i.ImageId), i.InstanceType, aws.ToString(i.SubnetId))
			}
			if len(i.SecurityGroups) != 1 || aws.ToString(i.SecurityGroups[0].GroupId) != aws.ToString(sg.GroupId) {
				t.Errorf("instance %s in groups %v, want the template's", aws.ToString(i.InstanceId), i.SecurityGroups)
			}
			want := map[string]string{"Name": "node", "role": "group", "cluster": "alpha", "aws:autoscaling:groupName": "nodes"}
			if got := ec2TagMap(i.Tags); !sameTags(got, want) {
				t.Errorf("instance %s tags %v, want %v", aws.ToString(i.InstanceId), got, want)
			}
		}
	}
	if len(ids) != 2 || len(ips) != 2 || len(names) != 2 {
		t.Fatalf("group of 2: instances %v at %v named %v, want 2 with distinct addresses and names", ids, ips, names)
	}
	for _, i := range srv.GroupInstances("nodes") {
		if string(i.UserData) != "version 2" || i.Group != "nodes" {
			t.Errorf("instance %s of the $Latest group: user-data %q, group %q", i.ID, i.UserData, i.Group)
		}
	}
	if d := srv.GroupInstances("defaults"); len(d) != 1 || string(d[0].UserData) != "version 1" || ips[d[0].PrivateIP] {
		t.Errorf("group without a version: %+v, want one instance of the default version 1 at its own address", d)
	}

	g, err := as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"nodes"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(g.AutoScalingGroups[0].Instances); n != 2 {
		t.Errorf("DescribeAutoScalingGroups lists %d instances, want 2", n)
	}

	if _, err := c.DetachInternetGateway(ctx, &ec2.DetachInternetGatewayInput{InternetGatewayId: igw.InternetGateway.InternetGatewayId, VpcId: aws.String(vpc)}); code(err) != "DependencyViolation" {
		t.Errorf("detaching the gateway while instances have public addresses: %v, want DependencyViolation", err)
	}
	if _, err := as.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("nodes")}); code(err) != "ResourceInUse" {
		t.Errorf("delete without ForceDelete: %v, want ResourceInUse", err)
	}
	if _, err := as.DeleteAutoScalingGroup(ctx, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("nodes"), ForceDelete: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	for _, i := range srv.GroupInstances("nodes") {
		if i.State != "shutting-down" {
			t.Errorf("instance %s %s after ForceDelete, want shutting-down", i.ID, i.State)
		}
	}
	w := ec2.NewInstanceTerminatedWaiter(c, func(o *ec2.InstanceTerminatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Millisecond, 10*time.Millisecond
	})
	if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids}, 5*time.Second); err != nil {
		t.Fatalf("waiting for the group's instances to terminate: %v", err)
	}
	for _, i := range srv.GroupInstances("nodes") {
		if i.State != "terminated" || i.PublicIP != "" {
			t.Errorf("instance %s %s at %q after ForceDelete and a Describe, want terminated without a public address", i.ID, i.State, i.PublicIP)
		}
	}
	if d := srv.GroupInstances("defaults"); d[0].State != "running" {
		t.Errorf("the other group's instance is %s, want running", d[0].State)
	}
}

func sameTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestGetConsoleOutput(t *testing.T) {
	srv := awstest.New(t, "eu-west-1")
	c := client(srv)
	ctx := context.Background()
	id := runOne(t, c)

	_, err := c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String("i-0000000000000dead")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidInstanceID.NotFound" || ae.ErrorMessage() != "The instance ID 'i-0000000000000dead' does not exist" {
		t.Errorf("unknown instance: %v, want InvalidInstanceID.NotFound", err)
	}

	out, err := c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Output != nil || aws.ToString(out.InstanceId) != id || out.Timestamp == nil {
		t.Errorf("no output yet: output %v, instance %q, timestamp %v; want nil output", out.Output, aws.ToString(out.InstanceId), out.Timestamp)
	}

	console := func() string {
		t.Helper()
		out, err := c.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
		if err != nil {
			t.Fatal(err)
		}
		b, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
		if err != nil {
			t.Fatalf("output is not base64: %v", err)
		}
		return string(b)
	}
	srv.SetConsole(id, "Ignition: fetching config\n")
	srv.AppendConsole(id, "Ignition: done\n")
	if got, want := console(), "Ignition: fetching config\nIgnition: done\n"; got != want {
		t.Errorf("console %q, want %q", got, want)
	}

	var big strings.Builder
	for n := 0; big.Len() < awstest.ConsoleOutputMax+10000; n++ {
		fmt.Fprintf(&big, "line %d\n", n)
	}
	srv.SetConsole(id, big.String())
	got := console()
	if want := big.String()[big.Len()-awstest.ConsoleOutputMax:]; got != want {
		t.Errorf("console of %d bytes: %d bytes answered, want its last %d", big.Len(), len(got), len(want))
	}
	if !slices.Equal([]byte(got), srv.Instances()[0].Console) {
		t.Error("Instances().Console differs from GetConsoleOutput's")
	}
}

// TestPagesFollowOnAfterStatesChange: each DescribeInstances moves states on, so a filter on
// the state matches fewer instances on the next page; NextToken still goes on after the last
// instance answered, as AWS's does, neither failing nor skipping one that still matches.
func TestPagesFollowOnAfterStatesChange(t *testing.T) {
	srv := awstest.New(t, "eu-west-1")
	c := client(srv)
	ctx := context.Background()
	_, sn := network(t, c, "10.0.0.0/24")
	var ids []string
	for range 4 {
		out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(sn)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(out.Instances[0].InstanceId))
	}
	if _, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil { // all running
		t.Fatal(err)
	}
	// The first two shut down; the next Describe sees them so, and terminates them.
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[:2]}); err != nil {
		t.Fatal(err)
	}
	var seen []string
	pg := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("instance-state-name"), Values: []string{"running", "shutting-down"}}}})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", seen, err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				seen = append(seen, aws.ToString(i.InstanceId))
			}
		}
	}
	if !slices.Equal(seen, ids) {
		t.Errorf("pages gave %v, want %v", seen, ids)
	}
}

func TestDescribeImagesFindsTheAccountsImagesByName(t *testing.T) {
	srv := awstest.New(t, "eu-west-1")
	c := client(srv)
	ctx := context.Background()
	older := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	newer := older.Add(48 * time.Hour)
	oldID := srv.AddImage(awstest.Image{Name: "kubeup-debian-20260102", Created: older, Owner: "self"})
	newID := srv.AddImage(awstest.Image{ID: "ami-0123456789abcdef0", Name: "kubeup-debian-20260104", Created: newer})
	srv.AddImage(awstest.Image{Name: "other-image", Created: newer, Owner: "self", Architecture: "arm64"})
	foreign := srv.AddImage(awstest.Image{Name: "kubeup-debian-20260105", Created: newer, Owner: "210987654321"})

	// What a client looking up the newest AMI of this account named kubeup-debian-* asks.
	mine := func(in *ec2.DescribeImagesInput) []ec2types.Image {
		t.Helper()
		var out []ec2types.Image
		pg := ec2.NewDescribeImagesPaginator(c, in)
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, page.Images...)
		}
		return out
	}
	byName := []ec2types.Filter{{Name: aws.String("name"), Values: []string{"kubeup-debian-*"}},
		{Name: aws.String("state"), Values: []string{"available"}}}
	imgs := mine(&ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: byName})
	if len(imgs) != 2 {
		t.Fatalf("self's kubeup-debian-* images: %d, want 2: %+v", len(imgs), imgs)
	}
	slices.SortFunc(imgs, func(a, b ec2types.Image) int { return strings.Compare(*b.CreationDate, *a.CreationDate) })
	n := imgs[0]
	if aws.ToString(n.ImageId) != newID || aws.ToString(n.Name) != "kubeup-debian-20260104" || aws.ToString(n.CreationDate) != "2026-01-04T03:04:05.000Z" ||
		aws.ToString(n.OwnerId) != awstest.Account || n.State != ec2types.ImageStateAvailable || n.Architecture != ec2types.ArchitectureValuesX8664 ||
		n.RootDeviceType != ec2types.DeviceTypeEbs || n.VirtualizationType != ec2types.VirtualizationTypeHvm || aws.ToBool(n.Public) {
		t.Errorf("newest image: %+v", n)
	}
	if aws.ToString(imgs[1].ImageId) != oldID || aws.ToString(imgs[1].CreationDate) != "2026-01-02T03:04:05.000Z" {
		t.Errorf("older image: %s %s", aws.ToString(imgs[1].ImageId), aws.ToString(imgs[1].CreationDate))
	}
	// MaxResults 1: the same two, a page each.
	pages := 0
	pg := ec2.NewDescribeImagesPaginator(c, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: byName, MaxResults: aws.Int32(1)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Images) != 1 {
			t.Errorf("page of %d images, want 1", len(page.Images))
		}
		pages++
	}
	if pages != 2 {
		t.Errorf("%d pages of MaxResults 1, want 2", pages)
	}
	// No owner: every image (4, in 2 pages of PageSize 2); the other account's by its id.
	if all := mine(&ec2.DescribeImagesInput{}); len(all) != 4 {
		t.Errorf("all images: %d, want 4", len(all))
	}
	if got := mine(&ec2.DescribeImagesInput{Owners: []string{"210987654321"}}); len(got) != 1 || aws.ToString(got[0].ImageId) != foreign {
		t.Errorf("images of 210987654321: %+v", got)
	}
	if got := mine(&ec2.DescribeImagesInput{Owners: []string{"amazon"}}); len(got) != 0 {
		t.Errorf("amazon's images: %+v, want none", got)
	}
	// ? is exactly one character; filters on architecture and owner-id.
	if got := mine(&ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"kubeup-debian-2026010?"}},
		{Name: aws.String("owner-id"), Values: []string{awstest.Account}}}}); len(got) != 2 {
		t.Errorf("kubeup-debian-2026010? of %s: %d images, want 2", awstest.Account, len(got))
	}
	if got := mine(&ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"kubeup-debian-202601?"}}}}); len(got) != 0 {
		t.Errorf("kubeup-debian-202601?: %d images, want none", len(got))
	}
	if got := mine(&ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("architecture"), Values: []string{"arm64"}}}}); len(got) != 1 ||
		aws.ToString(got[0].Name) != "other-image" {
		t.Errorf("arm64 images: %+v", got)
	}
	// By id: a known one, an unknown one, a malformed one, a bad owner.
	if got := mine(&ec2.DescribeImagesInput{ImageIds: []string{oldID}}); len(got) != 1 || aws.ToString(got[0].ImageId) != oldID {
		t.Errorf("image %s: %+v", oldID, got)
	}
	_, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{"ami-00000000000000000"}})
	if code(err) != "InvalidAMIID.NotFound" || !strings.Contains(err.Error(), "The image id '[ami-00000000000000000]' does not exist") {
		t.Errorf("unknown image id: %v, want InvalidAMIID.NotFound", err)
	}
	if _, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{"kubeup-debian"}}); code(err) != "InvalidAMIID.Malformed" {
		t.Errorf("malformed image id: %v, want InvalidAMIID.Malformed", err)
	}
	if _, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"me"}}); code(err) != "InvalidUserID.Malformed" {
		t.Errorf("owner me: %v, want InvalidUserID.Malformed", err)
	}
}

// runOne starts one instance in a new 10.0.0.0/24 subnet and returns its id.
func runOne(t *testing.T, c *ec2.Client) string {
	t.Helper()
	_, sn := network(t, c, "10.0.0.0/24")
	run, err := c.RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: aws.String(sn)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(run.Instances[0].InstanceId)
}
