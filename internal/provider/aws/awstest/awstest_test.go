package awstest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"kubeup.dev/kubeup/internal/provider/aws/awstest"
)

// client is the real SDK's EC2 client pointed at the stand-in.
func client(srv *awstest.Server) *ec2.Client {
	return ec2.New(ec2.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL),
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
