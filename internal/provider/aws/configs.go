package aws

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"kubeup.dev/kubeup/internal/cluster"
	"kubeup.dev/kubeup/internal/ignition"
	"kubeup.dev/kubeup/internal/provider"
)

// shaMeta is the object metadata holding the config's SHA-512, so a re-run can tell whether
// the stored config is current without reading it back.
const shaMeta = "sha512"

// UserDataLimit is EC2's user-data limit, on the raw bytes.
const UserDataLimit = 16 * 1024

// inS3 says whether a config goes to S3 behind a pointer, and why: when it holds keys
// (user-data is readable by anyone who may describe the instance, and by every process on it
// that can reach the metadata service) or when it is over the user-data limit.
func inS3(c Config) (bool, string) {
	switch {
	case c.Secret:
		return true, "holds private keys"
	case len(c.Raw) > UserDataLimit:
		return true, fmt.Sprintf("%d bytes > %d user-data limit", len(c.Raw), UserDataLimit)
	}
	return false, ""
}

// Channel is EC2's: user-data, or, for the master's config (it holds keys) and any config over
// the user-data limit, a hash-pinned pointer to its object under aws.configURL, which Deliver
// uploads.
func Channel(cfg *cluster.Config, c ignition.Config) (provider.Channel, error) {
	ch := provider.Channel{How: "EC2 user-data"}
	behind, why := inS3(Config{Name: c.Name, Raw: c.Raw, Secret: c.Role == cluster.RoleMaster})
	if !behind {
		return ch, nil
	}
	if cfg.AWS == nil {
		return provider.Channel{}, errors.New("aws: the cluster config has no aws block (fix: add one with region and configURL)")
	}
	url, err := (&Spec{ConfigURL: cfg.AWS.ConfigURL}).objectURL(c.Name)
	if err != nil {
		return provider.Channel{}, err
	}
	ch.PointerURL, ch.Why = url, why
	return ch, nil
}

// userData is what a machine gets as user-data: its config, or a pointer pinned by the
// config's SHA-512 to the S3 object holding it.
func (s *Spec) userData(c Config) ([]byte, error) {
	if behind, _ := inS3(c); !behind {
		return c.Raw, nil
	}
	url, err := s.objectURL(c.Name)
	if err != nil {
		return nil, err
	}
	return ignition.Pointer(url, c.Raw)
}

// ensureConfigs stores the configs that go to S3 in a private, encrypted bucket, and makes
// for each an instance profile that may read that one object.
func (r *Run) ensureConfigs(ctx context.Context, configs ...Config) error {
	var stored []Config
	for _, c := range configs {
		if behind, _ := inS3(c); behind {
			stored = append(stored, c)
		}
	}
	if len(stored) == 0 {
		return nil
	}
	if err := r.ensureBucket(ctx); err != nil {
		return err
	}
	for _, c := range stored {
		if err := r.ensureObject(ctx, c); err != nil {
			return err
		}
		if err := r.ensureProfile(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// ensureBucket makes the bucket if it is missing, blocks every form of public access to it and
// sets default encryption. A bucket that exists is the operator's: kubeup tightens it but never
// deletes it.
func (r *Run) ensureBucket(ctx context.Context) error {
	bucket, _, _ := r.s.bucketPrefix()
	c := r.p.s3
	_, err := r.ensure(ctx, "s3-bucket", bucket, func(ctx context.Context) (string, error) {
		_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
		switch {
		case err == nil:
			return bucket, nil
		case httpStatus(err) == http.StatusNotFound:
			return "", nil
		}
		return "", r.wrap("HeadBucket", "bucket "+bucket, err)
	}, func(ctx context.Context) (string, error) {
		in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
		if r.p.region != "us-east-1" { // us-east-1 refuses its own name as a constraint
			in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(r.p.region)}
		}
		_, err := c.CreateBucket(ctx, in)
		return bucket, r.wrap("CreateBucket", "bucket "+bucket, err)
	})
	if err != nil {
		return err
	}

	blocked := false
	if pab, err := c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(bucket)}); err == nil {
		p := pab.PublicAccessBlockConfiguration
		blocked = aws.ToBool(p.BlockPublicAcls) && aws.ToBool(p.IgnorePublicAcls) && aws.ToBool(p.BlockPublicPolicy) && aws.ToBool(p.RestrictPublicBuckets)
	} else if httpStatus(err) != http.StatusNotFound {
		return r.wrap("GetPublicAccessBlock", "bucket "+bucket, err)
	}
	err = r.change(ctx, "s3-public-block", bucket, blocked, func(ctx context.Context) error {
		_, err := c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: aws.String(bucket),
			PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{BlockPublicAcls: aws.Bool(true),
				IgnorePublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}})
		return r.wrap("PutPublicAccessBlock", "bucket "+bucket, err)
	})
	if err != nil {
		return err
	}

	encrypted := false
	if enc, err := c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(bucket)}); err == nil {
		encrypted = enc.ServerSideEncryptionConfiguration != nil && len(enc.ServerSideEncryptionConfiguration.Rules) > 0
	} else if httpStatus(err) != http.StatusNotFound {
		return r.wrap("GetBucketEncryption", "bucket "+bucket, err)
	}
	return r.change(ctx, "s3-encryption", bucket, encrypted, func(ctx context.Context) error {
		_, err := c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String(bucket),
			ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{
				ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAes256}}}}})
		return r.wrap("PutBucketEncryption", "bucket "+bucket, err)
	})
}

// ensureObject uploads c unless the object already holds this very config.
func (r *Run) ensureObject(ctx context.Context, c Config) error {
	bucket, _, _ := r.s.bucketPrefix()
	key := r.s.objectKey(c)
	sum := sha512.Sum512(c.Raw)
	want := hex.EncodeToString(sum[:])
	current := false
	head, err := r.p.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	switch {
	case err == nil:
		current = head.Metadata[shaMeta] == want
	case httpStatus(err) == http.StatusNotFound:
	default:
		return r.wrap("HeadObject", "s3://"+bucket+"/"+key, err)
	}
	return r.change(ctx, "s3-object", "s3://"+bucket+"/"+key, current, func(ctx context.Context) error {
		_, err := r.p.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
			Body: bytes.NewReader(c.Raw), ContentType: aws.String("application/json"),
			ServerSideEncryption: s3types.ServerSideEncryptionAes256, Metadata: map[string]string{shaMeta: want}})
		return r.wrap("PutObject", "s3://"+bucket+"/"+key, err)
	})
}

// httpStatus is the HTTP status of an SDK error that got an answer, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
