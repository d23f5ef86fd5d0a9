// Package aws brings a kubeup cluster up on EC2 and takes it down again, with the real
// aws-sdk-go-v2: a VPC with one subnet, an internet gateway and its default route, security
// groups, the master instance with an Elastic IP and an EBS volume for etcd, and an Auto
// Scaling group of nodes started from a launch template that carries the node role's Ignition
// config as user-data.
//
// Provider is this target's provider.Provider, which kubeup up, status and down call; Client
// holds the AWS calls. Up comes in steps because the configs depend on AWS: Prepare finds or
// makes the master's Elastic IP (kubeup puts it into the API server certificate before it makes
// the secrets bundle), the network and the etcd volume (whose udev path the master's config
// formats and mounts); Deliver stores the rendered configs; Create makes the rest. Machines
// reads each instance's console output (GetConsoleOutput), where the image prints its progress,
// so nobody logs in.
//
// The master's config holds private keys, so it never goes into user-data (which anyone with
// ec2:DescribeInstanceAttribute can read): it is stored as a private, encrypted S3 object and
// the user-data is a pointer pinned by the config's SHA-512. An IAM role, through an instance
// profile, lets the instance read that one object and nothing else. Configs over EC2's 16 KiB
// user-data limit take the same route.
//
// Everything is tagged kubeup.dev/cluster=<name> and found again by its tags, so Up is safe to
// re-run (it creates only what is missing) and Down deletes exactly what Up made. Creations that
// EC2 makes idempotent with a ClientToken (instances, volumes, launch templates) carry one
// derived from a per-cluster seed, so a retried call whose answer was lost makes nothing twice.
//
// The tests run against awstest, an in-process stand-in that speaks the EC2, Auto Scaling, IAM
// and S3 wire protocols; no AWS account is reachable from here.
package aws
