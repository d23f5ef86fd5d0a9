// Package awstest is an in-process STAND-IN for the parts of AWS that the aws provider uses,
// for tests: no AWS account and no EC2 emulator can be reached from where kubeup is built.
//
// It is an httptest server speaking the real wire protocols, so that the real aws-sdk-go-v2
// clients (request signing, serialization, retries, paginators, waiters, error decoding) run
// end to end against it: EC2 (the EC2 query protocol), Auto Scaling and IAM (the AWS query
// protocol: form-encoded Action=...&Version=..., XML answers) and S3 (REST-XML, path-style).
// It keeps state; checks the parameters each operation requires; honours EC2 ClientTokens as
// AWS documents them (same token and parameters: the first call's answer again; same token,
// other parameters: IdempotentParameterMismatch; Calls marks such a replay, which is how the
// SDK's retry of a call whose answer was lost shows); refuses deletions AWS refuses
// (DependencyViolation, VolumeInUse, DeleteConflict); answers Describe calls a few items per
// page with a NextToken that goes on after the last item answered (so items that change
// between pages are neither an error nor skipped); moves instances and volumes through their
// states one Describe at a time, so waiters really poll; and answers with AWS-shaped errors,
// including ones a test injects with Fail.
//
// Instances. Every instance gets a private address in its subnet: the one RunInstances names
// (refused if outside the subnet, in its reserved range or used by a live instance), or else
// the lowest free one, skipping the five addresses AWS reserves (the network address, the
// next three and the last); and the name EC2 gives it in a VPC with DNS hostnames,
// ip-10-0-0-23.<region>.compute.internal (ip-10-0-0-23.ec2.internal in us-east-1).
// An instance launched without security groups is in its VPC's default group.
//
// Auto Scaling groups. CreateAutoScalingGroup starts DesiredCapacity instances at once, spread
// over the group's subnets (VPCZoneIdentifier), from its launch template at the version it
// names ($Latest, $Default or a number; $Default if none): that version's AMI, type,
// user-data, metadata options, instance profile, security groups (its primary network
// interface's, or its SecurityGroupIds) and instance tags, the group's tags that propagate at
// launch, and aws:autoscaling:groupName. A template whose primary network interface has
// AssociatePublicIpAddress gives each instance a public address (loopback, see below).
// DescribeAutoScalingGroups lists the group's instances; DeleteAutoScalingGroup refuses a
// group with a desired capacity unless ForceDelete, which shuts its instances down (terminated
// on the next DescribeInstances). GroupInstances lists what a group launched. A group does no
// more: no health checks, no replacement of an instance that was terminated or failed to
// launch (a launch finding no free address leaves the group short), no scaling (policies,
// schedules, UpdateAutoScalingGroup), no activities.
//
// Instance refreshes and lifecycle hooks. StartInstanceRefresh checks its preferences as Auto
// Scaling does (MinHealthyPercentage 0-100, default 90; MaxHealthyPercentage 100-200, only
// with a minimum, at most 100 above it; auto rollback only with a desired configuration at a
// version number) and refuses a second refresh of a group while one is active
// (InstanceRefreshInProgress). A refresh moves on one step per DescribeInstanceRefreshes:
// Pending, then InProgress, replacing the group's instances (but those matching the desired
// configuration, with SkipMatching) in batches the percentages allow, at least one: without a
// maximum an old instance is taken down as its replacement launches; with one, the
// replacements launch first and the old instances are taken down once they serve. A
// replacement serves one step after its launch (there are no health checks or warm-up). An
// instance taken down from a group with a terminating lifecycle hook (PutLifecycleHook,
// autoscaling:EC2_INSTANCE_TERMINATING) waits in Terminating:Wait, running, until
// CompleteLifecycleAction names it, or its HeartbeatTimeout passes; then it shuts down. A
// refresh ends Successful, and the group takes its desired configuration; or Cancelled
// (CancelInstanceRefresh; ActiveInstanceRefreshNotFound if none runs); or Failed, when a
// replacement cannot launch. Not modelled, and refused where a caller could ask for them:
// checkpoints, launching hooks, hook notifications, lifecycle action tokens, desired
// configurations other than a launch template, the ReplaceRootVolume strategy, bake time,
// alarms, and the rollback itself (AutoRollback is checked and kept, never carried out).
//
// Console output. GetConsoleOutput answers with an instance's console output, which only a
// test writes (SetConsole, AppendConsole: a test playing a booting machine), base64 and at
// most its last ConsoleOutputMax (64 KiB) bytes as EC2 does; an instance that has none yet
// answers without output, as EC2 does. Latest is accepted and changes nothing.
//
// Images. DescribeImages knows only the AMIs a test gives the account with AddImage (as Packer
// would have registered them; Account, 123456789012, is "self"), with their name, creation
// date, owner, state and architecture, all EBS-backed HVM: ImageId.N (an unknown id is
// InvalidAMIID.NotFound, a malformed one InvalidAMIID.Malformed), Owner.N (self, an account
// id, amazon, aws-marketplace, aws-backup-vault; any other value is InvalidUserID.Malformed),
// filters on name, state, architecture, image-id, owner-id, owner-alias, creation-date, tags
// and a few more. Which images an account may see is not modelled (every image added is
// answered, another account's as if shared with this one), so ExecutableBy is refused.
// Filter values of every Describe call may use EC2's wildcards: * (any characters), ? (one
// character), \ escaping the next.
//
// Public addresses are loopback: Elastic IPs are 127.0.113.10, .11, ... (AddressPlan), the
// addresses given at launch 127.0.112.10, .11, ..., so that a client following one (kubeup
// asking the API server at the master's Elastic IP) sends nothing off this host: test traffic
// only goes to loopback. Nothing in the stand-in treats them differently from public ones.
// Nothing the stand-in starts listens there, so such a client gets connection refused (unless
// some process on the host listens on all addresses at that port).
//
// It does NOT check: signatures (only that a SigV4 Authorization header is present), IAM
// policies (every caller may do everything; the provider's role policy is stored, never
// evaluated), quotas (except injected errors), regions and zones (one zone, <region>a), AMIs
// and instance types (RunInstances and launch templates accept any value, also an AMI id
// AddImage never added), or CIDR overlaps. An instance never boots its
// user-data and writes no console output of its own. Only the operations the provider calls
// exist; any other answers InvalidAction.
package awstest
