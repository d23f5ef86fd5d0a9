package aws

import (
	"context"
	"encoding/json"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// readPolicy is the name of the role's inline policy.
const readPolicy = "read-own-config"

const ec2Trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// readOnePolicy lets the role read one object: its machine's config.
func readOnePolicy(bucket, key string) string {
	doc := map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
		"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::" + bucket + "/" + key}}}
	b, _ := json.Marshal(doc)
	return string(b)
}

// ensureProfile makes the IAM role and instance profile of the machines that read c from S3,
// allowed s3:GetObject on c's object only.
func (r *Run) ensureProfile(ctx context.Context, c Config) error {
	s, cl := r.s, r.p.iam
	name := s.roleName(c)
	bucket, _, _ := s.bucketPrefix()
	tags := []iamtypes.Tag{{Key: aws.String(ClusterTag), Value: aws.String(s.Cluster)}, {Key: aws.String("Name"), Value: aws.String(name)}}
	_, err := r.ensure(ctx, "iam-role", name, func(ctx context.Context) (string, error) {
		out, err := cl.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		if codeOf(err) == "NoSuchEntity" {
			return "", nil
		}
		if err != nil {
			return "", r.wrap("GetRole", "role "+name, err)
		}
		return aws.ToString(out.Role.RoleName), nil
	}, func(ctx context.Context) (string, error) {
		_, err := cl.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(ec2Trust),
			Description: aws.String("kubeup: lets " + c.Name + " machines read their Ignition config"), Tags: tags})
		return name, r.wrap("CreateRole", "role "+name, err)
	})
	if err != nil {
		return err
	}

	want := readOnePolicy(bucket, s.objectKey(c))
	current := false
	if !r.dry || r.exists("iam-role", name) {
		out, err := cl.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(readPolicy)})
		switch {
		case err == nil:
			// IAM returns policy documents URL-encoded.
			doc, _ := url.QueryUnescape(aws.ToString(out.PolicyDocument))
			current = sameJSON(doc, want)
		case codeOf(err) != "NoSuchEntity":
			return r.wrap("GetRolePolicy", "role "+name, err)
		}
	}
	err = r.change(ctx, "iam-policy", name+"/"+readPolicy, current, func(ctx context.Context) error {
		_, err := cl.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(readPolicy), PolicyDocument: aws.String(want)})
		return r.wrap("PutRolePolicy", "role "+name, err)
	})
	if err != nil {
		return err
	}

	var roles []string
	arn, err := r.ensure(ctx, "instance-profile", name, func(ctx context.Context) (string, error) {
		out, err := cl.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
		if codeOf(err) == "NoSuchEntity" {
			return "", nil
		}
		if err != nil {
			return "", r.wrap("GetInstanceProfile", "instance profile "+name, err)
		}
		for _, ro := range out.InstanceProfile.Roles {
			roles = append(roles, aws.ToString(ro.RoleName))
		}
		return aws.ToString(out.InstanceProfile.Arn), nil
	}, func(ctx context.Context) (string, error) {
		out, err := cl.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(name), Tags: tags})
		if err != nil {
			return "", r.wrap("CreateInstanceProfile", "instance profile "+name, err)
		}
		w := iam.NewInstanceProfileExistsWaiter(cl, func(o *iam.InstanceProfileExistsWaiterOptions) { r.p.waitDelay(&o.MinDelay, &o.MaxDelay) })
		err = w.Wait(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)}, 2*time.Minute)
		return aws.ToString(out.InstanceProfile.Arn), r.wrap("GetInstanceProfile (wait until it exists)", "instance profile "+name, err)
	})
	if err != nil {
		return err
	}
	r.profiles[c.Name] = arn
	has := false
	for _, ro := range roles {
		has = has || ro == name
	}
	return r.change(ctx, "profile-role", name+" ∋ "+name, has, func(ctx context.Context) error {
		_, err := cl.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(name), RoleName: aws.String(name)})
		return r.wrap("AddRoleToInstanceProfile", "instance profile "+name, err)
	})
}

// exists says whether the run found kind/name already there.
func (r *Run) exists(kind, name string) bool {
	for _, st := range r.rep.Steps {
		if st.Kind == kind && st.Name == name {
			return st.State == "exists" || st.State == "created"
		}
	}
	return false
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
