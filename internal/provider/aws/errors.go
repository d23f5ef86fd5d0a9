package aws

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"
)

// Error is a failed AWS call: which operation, on which resource, AWS's error code and what to
// do about it.
type Error struct {
	Op       string // the API operation, e.g. RunInstances
	Resource string // what it was for, e.g. "instance aws-master"
	Code     string // AWS's error code, if AWS answered
	Hint     string
	Err      error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("aws %s (%s): %v", e.Op, e.Resource, e.Err)
	if e.Hint != "" {
		msg += "\n  hint: " + e.Hint
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// wrap turns an SDK error into an *Error naming the operation and resource, with a hint.
func wrap(region, op, resource string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	e := &Error{Op: op, Resource: resource, Err: err}
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		e.Op = oe.Operation()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.Code = ae.ErrorCode()
	}
	e.Hint = hint(region, e.Code, err)
	return e
}

// hint says what to do about an error, by AWS's error code or, for errors that never reached
// AWS, by the SDK's message.
func hint(region, code string, err error) string {
	switch code {
	case "UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "Forbidden":
		return "the credentials are not allowed to do this: give the IAM user or role the permission " +
			"(aws sts get-caller-identity shows who you are; an explicit Deny or an SCP can also refuse it)"
	case "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
		"InvalidAccessKeyId", "UnrecognizedClientException", "InvalidToken":
		return "the credentials are invalid or expired: check AWS_PROFILE / AWS_ACCESS_KEY_ID, or run aws sso login"
	case "OptInRequired", "UnsupportedOperation", "Unsupported", "InvalidAMIID.NotFound", "InvalidAMIID.Malformed",
		"InvalidAMIID.Unavailable", "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException":
		return fmt.Sprintf("this may not exist or not be enabled in region %s: check aws.region, aws.ami (AMIs are per region) and aws.instanceType", region)
	case "RequestLimitExceeded", "Throttling", "ThrottlingException", "SlowDown":
		return "AWS is throttling the requests: wait a minute and re-run; up and down resume where they stopped"
	case "InsufficientInstanceCapacity":
		return "AWS has no capacity for this instance type in the subnet's zone now: retry later or choose another aws.instanceType"
	case "IdempotentParameterMismatch":
		return "a previous run used the same client token with other parameters: the config changed since; run kubeup down first, or remove state/aws/token-seed to start afresh"
	case "DependencyViolation", "VolumeInUse", "DeleteConflict", "InvalidIPAddress.InUse":
		return "something still uses it: an earlier step did not finish, or something outside kubeup uses it; re-run down, or remove the dependant yourself"
	}
	if strings.HasSuffix(code, "LimitExceeded") || strings.HasSuffix(code, "QuotaExceeded") || code == "MaxSpotInstanceCountExceeded" {
		return fmt.Sprintf("an account quota is reached in region %s: free some resources, or ask for more in the Service Quotas console", region)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "failed to retrieve credentials"), strings.Contains(msg, "no EC2 IMDS role found"),
		strings.Contains(msg, "static credentials are empty"):
		return "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
	case strings.Contains(msg, "no such host"), strings.Contains(msg, "connection refused"), strings.Contains(msg, "i/o timeout"):
		return fmt.Sprintf("AWS is not reachable: check the network, aws.region (%s) and AWS_ENDPOINT_URL if set", region)
	}
	return ""
}

// codeOf is an SDK error's AWS error code, or "".
func codeOf(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
