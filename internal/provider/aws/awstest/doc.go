// Package awstest is an in-process STAND-IN for the parts of AWS that the aws provider uses,
// for tests: no AWS account and no EC2 emulator can be reached from where kubeup is built.
//
// It is an httptest server speaking the real wire protocols, so that the real aws-sdk-go-v2
// clients (request signing, serialization, retries, paginators, waiters, error decoding) run
// end to end against it: EC2 (the EC2 query protocol), Auto Scaling and IAM (the AWS query
// protocol: form-encoded Action=...&Version=..., XML answers) and S3 (REST-XML, path-style).
// It keeps state; checks the parameters each operation requires; honours EC2 ClientTokens as
// AWS documents them (same token and parameters: the first call's answer again; same token,
// other parameters: IdempotentParameterMismatch); refuses deletions AWS refuses
// (DependencyViolation, VolumeInUse, DeleteConflict); answers Describe calls a few items per
// page with a NextToken; moves instances and volumes through their states one Describe at a
// time, so waiters really poll; and answers with AWS-shaped errors, including ones a test
// injects with Fail.
//
// It does NOT check: signatures (only that a SigV4 Authorization header is present), IAM
// policies (every caller may do everything; the provider's role policy is stored, never
// evaluated), quotas (except injected errors), regions and zones (one zone, <region>a), AMIs
// and instance types (any value is accepted), or CIDR overlaps. An Auto Scaling group launches
// no EC2 instances here, and an instance never boots its user-data. Only the operations the
// provider calls exist; any other answers InvalidAction.
package awstest
