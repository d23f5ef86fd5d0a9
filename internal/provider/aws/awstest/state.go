package awstest

import (
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
)

// What tests read back. Each returns a copy, taken under the lock.

// Instance is an instance as the stand-in holds it.
type Instance struct {
	ID, State, PrivateIP, PublicIP, Profile string
	// PrivateDNS is the private address's name, ip-10-0-0-23.<region>.compute.internal.
	PrivateDNS                string
	Subnet, AMI, InstanceType string
	// Group is the Auto Scaling group that launched the instance ("" for RunInstances').
	Group          string
	Tags           map[string]string
	SecurityGroups []string
	Metadata       MetadataOptions
	UserData       []byte // decoded
	Console        []byte // what GetConsoleOutput answers (its last ConsoleOutputMax bytes)
}

// Rule is one ingress rule.
type Rule struct {
	Protocol string
	From, To int // -1 when the rule has no ports
	CIDRs    []string
	Groups   []string
}

// SecurityGroup is a group with its ingress rules.
type SecurityGroup struct {
	ID, Name string
	Tags     map[string]string
	Rules    []Rule
}

// LaunchTemplate is a launch template's newest version, and which is the default.
type LaunchTemplate struct {
	ID, Name string
	Versions int
	// Default is the default version's number; DefaultUserData its user-data, decoded.
	Default           int
	DefaultUserData   []byte
	AMI, InstanceType string
	Tags              map[string]string
	UserData          []byte // decoded
	Metadata          MetadataOptions
	Profile           string
	SecurityGroups    []string
	InstanceTags      map[string]string
}

func tagMap(tags []xTag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

// Instances lists every instance, terminated ones too.
func (s *Server) Instances() []Instance {
	return s.instancesWhere(func(*instance) bool { return true })
}

// GroupInstances lists the instances the Auto Scaling group name launched, terminated ones
// too (also once the group is deleted).
func (s *Server) GroupInstances(name string) []Instance {
	return s.instancesWhere(func(i *instance) bool { return i.group == name })
}

func (s *Server) instancesWhere(keep func(*instance) bool) []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Instance
	for _, id := range slices.Sorted(maps.Keys(s.instances)) {
		i := s.instances[id]
		if !keep(i) {
			continue
		}
		ud, _ := base64.StdEncoding.DecodeString(i.UserData)
		in := Instance{ID: i.ID, State: i.State.Name, PrivateIP: i.PrivateIP, PublicIP: i.PublicIP, PrivateDNS: i.PrivateDNS,
			Subnet: i.SubnetID, AMI: i.ImageID, InstanceType: i.Type, Group: i.group, Tags: tagMap(i.TagSet),
			Metadata: i.Metadata, UserData: ud, Console: slices.Clone(i.console)}
		if i.Profile != nil {
			in.Profile = i.Profile.Arn
		}
		for _, g := range i.Groups {
			in.SecurityGroups = append(in.SecurityGroups, g.GroupID)
		}
		out = append(out, in)
	}
	return out
}

// SetConsole makes text the console output of an instance, as a test playing the booting
// machine writes it: GetConsoleOutput answers with its last ConsoleOutputMax bytes. It panics
// if no such instance exists.
func (s *Server) SetConsole(instanceID, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consoleOf("SetConsole", instanceID).setConsole([]byte(text))
}

// AppendConsole adds text to an instance's console output (which keeps its last
// ConsoleOutputMax bytes). It panics if no such instance exists.
func (s *Server) AppendConsole(instanceID, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.consoleOf("AppendConsole", instanceID)
	i.setConsole(append(slices.Clone(i.console), text...))
}

func (s *Server) consoleOf(caller, id string) *instance {
	i := s.instances[id]
	if i == nil {
		panic(fmt.Sprintf("awstest: %s: no instance %s", caller, id))
	}
	return i
}

// Volumes maps every volume to the instance it is attached to ("" if none).
func (s *Server) Volumes() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for id, v := range s.volumes {
		out[id] = ""
		for _, a := range v.Attachments {
			out[id] = a.InstanceID
		}
	}
	return out
}

// SecurityGroups lists every security group.
func (s *Server) SecurityGroups() []SecurityGroup {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SecurityGroup
	for _, id := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[id]
		sg := SecurityGroup{ID: g.ID, Name: g.Name, Tags: tagMap(g.TagSet)}
		for _, p := range g.Ingress {
			r := Rule{Protocol: p.Protocol, From: -1, To: -1}
			if p.From != nil {
				r.From, r.To = *p.From, *p.To
			}
			for _, c := range p.Ranges {
				r.CIDRs = append(r.CIDRs, c.Cidr)
			}
			for _, gp := range p.Groups {
				r.Groups = append(r.Groups, gp.GroupID)
			}
			sg.Rules = append(sg.Rules, r)
		}
		out = append(out, sg)
	}
	return out
}

// LaunchTemplates lists every launch template.
func (s *Server) LaunchTemplates() []LaunchTemplate {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LaunchTemplate
	for _, id := range slices.Sorted(maps.Keys(s.templates)) {
		t := s.templates[id]
		d := t.latest()
		ud, _ := base64.StdEncoding.DecodeString(d.get("UserData"))
		dud, _ := base64.StdEncoding.DecodeString(t.Versions[t.Default-1].get("UserData"))
		lt := LaunchTemplate{ID: t.ID, Name: t.Name, Versions: len(t.Versions), Default: t.Default, DefaultUserData: dud,
			AMI: d.get("ImageId"), InstanceType: d.get("InstanceType"), Tags: tagMap(t.TagSet), UserData: ud,
			Metadata: metadataFrom(d, "MetadataOptions"), Profile: d.get("IamInstanceProfile.Arn"),
			SecurityGroups: d.strings("NetworkInterface.1.SecurityGroupId"), InstanceTags: tagMap(tagsFor(d, "", "instance"))}
		out = append(out, lt)
	}
	return out
}

// Object is an S3 object's content and its server-side encryption, if it exists.
func (s *Server) Object(bucket, key string) (data []byte, sse string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil || b.objects[key] == nil {
		return nil, "", false
	}
	o := b.objects[key]
	return slices.Clone(o.data), o.sse, true
}

// Bucket says whether a bucket exists, blocks all public access and has default encryption.
func (s *Server) Bucket(name string) (exists, publicBlocked bool, encryption string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[name]
	if b == nil {
		return false, false, ""
	}
	p := b.publicBlock
	return true, p != nil && p.BlockPublicAcls && p.IgnorePublicAcls && p.BlockPublicPolicy && p.RestrictPublicBuckets, b.encryption
}

// RolePolicy is a role's inline policy document, if both exist.
func (s *Server) RolePolicy(roleName, policy string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.roles[roleName]
	if r == nil {
		return "", false
	}
	doc, ok := r.Policies[policy]
	return doc, ok
}

// ProfileRoles lists the roles in an instance profile, and whether it exists.
func (s *Server) ProfileRoles(name string) ([]string, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.profiles[name]
	if p == nil {
		return nil, "", false
	}
	var roles []string
	for _, r := range p.Roles {
		roles = append(roles, r.Name)
	}
	return roles, p.Arn, true
}

// Tagged lists every live resource carrying tag key=value, as "kind id Name": what a cluster
// leaves behind. Terminated instances are not live.
func (s *Server) Tagged(key, value string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	add := func(kind, id string, tags []xTag) {
		if v, ok := tagValue(tags, key); ok && v == value {
			name, _ := tagValue(tags, "Name")
			out = append(out, kind+" "+id+" "+name)
		}
	}
	named := func(kind, id string, tags []iamTag) {
		m := map[string]string{}
		for _, t := range tags {
			m[t.Key] = t.Value
		}
		if v, ok := m[key]; ok && v == value {
			out = append(out, kind+" "+id+" "+m["Name"])
		}
	}
	for id, v := range s.vpcs {
		add("vpc", id, v.TagSet)
	}
	for id, v := range s.subnets {
		add("subnet", id, v.TagSet)
	}
	for id, v := range s.igws {
		add("internet-gateway", id, v.TagSet)
	}
	for id, v := range s.groups {
		add("security-group", id, v.TagSet)
	}
	for id, v := range s.volumes {
		add("volume", id, v.TagSet)
	}
	for id, v := range s.addresses {
		add("elastic-ip", id, v.TagSet)
	}
	for id, v := range s.instances {
		if v.State.Name != "terminated" {
			add("instance", id, v.TagSet)
		}
	}
	for id, v := range s.templates {
		add("launch-template", id, v.TagSet)
	}
	for id, g := range s.asgs {
		var tags []iamTag
		for _, t := range g.Tags {
			tags = append(tags, iamTag{t.Key, t.Value})
		}
		named("autoscaling-group", id, tags)
	}
	for id, r := range s.roles {
		named("iam-role", id, r.Tags)
	}
	for id, p := range s.profiles {
		named("instance-profile", id, p.Tags)
	}
	slices.Sort(out)
	return out
}

// Objects lists a bucket's keys.
func (s *Server) Objects(bucket string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.buckets[bucket]; b != nil {
		return slices.Sorted(maps.Keys(b.objects))
	}
	return nil
}

// MainRoutes lists the routes of every VPC's main route table as "vpc dest → target".
func (s *Server) MainRoutes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, rt := range s.routes {
		if isMain(rt) {
			for _, r := range rt.Routes {
				out = append(out, fmt.Sprintf("%s %s → %s", rt.VpcID, r.Dest, r.Gateway))
			}
		}
	}
	slices.Sort(out)
	return out
}

// Addresses maps every Elastic IP to the instance it is associated with ("" if none).
func (s *Server) Addresses() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, a := range s.addresses {
		out[a.PublicIP] = a.InstanceID
	}
	return out
}
