package awstest

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

const asgVersion = "2011-01-01"

type asgTemplate struct {
	ID      string `xml:"LaunchTemplateId"`
	Name    string `xml:"LaunchTemplateName"`
	Version string `xml:"Version"`
}

type asgTag struct {
	ResourceID   string `xml:"ResourceId"`
	ResourceType string `xml:"ResourceType"`
	Key          string `xml:"Key"`
	Value        string `xml:"Value"`
	Propagate    bool   `xml:"PropagateAtLaunch"`
}

// asgInstance is a group's instance as DescribeAutoScalingGroups lists it.
type asgInstance struct {
	ID             string      `xml:"InstanceId"`
	Type           string      `xml:"InstanceType"`
	AZ             string      `xml:"AvailabilityZone"`
	Lifecycle      string      `xml:"LifecycleState"`
	Health         string      `xml:"HealthStatus"`
	LaunchTemplate asgTemplate `xml:"LaunchTemplate"`
	Protected      bool        `xml:"ProtectedFromScaleIn"`
}

type asGroup struct {
	Name           string      `xml:"AutoScalingGroupName"`
	ARN            string      `xml:"AutoScalingGroupARN"`
	LaunchTemplate asgTemplate `xml:"LaunchTemplate"`
	Min            int         `xml:"MinSize"`
	Max            int         `xml:"MaxSize"`
	Desired        int         `xml:"DesiredCapacity"`
	Cooldown       int         `xml:"DefaultCooldown"`
	Zones          []string    `xml:"AvailabilityZones>member"`
	HealthCheck    string      `xml:"HealthCheckType"`
	Created        string      `xml:"CreatedTime"`
	Subnets        string      `xml:"VPCZoneIdentifier"`
	Status         string      `xml:"Status,omitempty"`
	Tags           []asgTag    `xml:"Tags>member"`
	// Instances is filled in when the group is described.
	Instances []asgInstance `xml:"Instances>member"`
	hooks     map[string]*lifecycleHook
}

func (s *Server) asgHandlers() map[string]func(q) (*reply, *apiError) {
	h := map[string]func(q) (*reply, *apiError){
		"CreateAutoScalingGroup": s.createASG, "DescribeAutoScalingGroups": s.describeASGs, "DeleteAutoScalingGroup": s.deleteASG,
	}
	maps.Copy(h, s.refreshHandlers())
	return h
}

func (s *Server) createASG(in q) (*reply, *apiError) {
	if e := in.require("AutoScalingGroupName", "MinSize", "MaxSize"); e != nil {
		return nil, e
	}
	name := in.get("AutoScalingGroupName")
	if s.asgs[name] != nil {
		return nil, errorf("AlreadyExists", "AutoScalingGroup by this name already exists")
	}
	g := &asGroup{Name: name, ARN: fmt.Sprintf("arn:aws:autoscaling:%s:123456789012:autoScalingGroup:%s:autoScalingGroupName/%s", s.Region, s.id("uuid"), name),
		Cooldown: 300, HealthCheck: "EC2", Created: "2026-01-01T00:00:00Z", Subnets: in.get("VPCZoneIdentifier")}
	fmt.Sscan(in.get("MinSize"), &g.Min)
	fmt.Sscan(in.get("MaxSize"), &g.Max)
	g.Desired = g.Min
	if in.has("DesiredCapacity") {
		fmt.Sscan(in.get("DesiredCapacity"), &g.Desired)
	}
	if g.Desired < g.Min || g.Desired > g.Max {
		return nil, errorf("ValidationError", "Desired capacity:%d must be between the specified min size:%d and max size:%d", g.Desired, g.Min, g.Max)
	}
	lt, e := s.groupTemplate(in)
	if e != nil {
		return nil, e
	}
	// No version is the template's default version, as Auto Scaling documents.
	g.LaunchTemplate = asgTemplate{lt.ID, lt.Name, cmp.Or(in.get("LaunchTemplate.Version"), "$Default")}
	version, ok := lt.resolve(g.LaunchTemplate.Version)
	if !ok {
		return nil, errorf("ValidationError", "You must use a valid fully-formed launch template. The specified launch template version %s, of template ID %s, does not exist.", g.LaunchTemplate.Version, lt.ID)
	}
	var subnets []*subnet
	for _, id := range strings.Split(g.Subnets, ",") {
		sn := s.subnets[strings.TrimSpace(id)]
		if sn == nil {
			return nil, errorf("ValidationError", "The subnet ID '%s' does not exist", id)
		}
		subnets = append(subnets, sn)
		if !slices.Contains(g.Zones, sn.AZ) {
			g.Zones = append(g.Zones, sn.AZ)
		}
	}
	// Auto Scaling checks the template as a launch would: it refuses the group, not only its launches.
	d := lt.Versions[version-1]
	if d.get("ImageId") == "" {
		return nil, errorf("ValidationError", "You must use a valid fully-formed launch template. The request must contain the parameter ImageId")
	}
	for _, sn := range subnets {
		if _, e := s.instanceGroups(templateGroups(d), sn.VpcID); e != nil {
			return nil, errorf("ValidationError", "You must use a valid fully-formed launch template. %s", e.Message)
		}
	}
	for _, t := range in.list("Tags.member") {
		g.Tags = append(g.Tags, asgTag{name, "auto-scaling-group", in.get(t + ".Key"), in.get(t + ".Value"), in.get(t+".PropagateAtLaunch") == "true"})
	}
	s.asgs[name] = g
	// The group starts its desired capacity at once, spread over its subnets. A launch that
	// finds no free address fails as EC2 would refuse it, and, as there, the group stays short.
	for n := range g.Desired {
		if _, e := s.launch(g, lt, version, subnets[n%len(subnets)]); e != nil {
			break
		}
	}
	return answer(), nil
}

// groupTemplate is the launch template a group names, by LaunchTemplateId or LaunchTemplateName.
func (s *Server) groupTemplate(in q) (*launchTemplate, *apiError) {
	id, name := in.get("LaunchTemplate.LaunchTemplateId"), in.get("LaunchTemplate.LaunchTemplateName")
	switch {
	case id != "" && name != "":
		return nil, errorf("ValidationError", "Valid requests must contain either launchTemplateId or LaunchTemplateName, not both.")
	case id != "":
		if lt := s.templateBy(id, ""); lt != nil {
			return lt, nil
		}
		return nil, errorf("ValidationError", "You must use a valid fully-formed launch template. The specified launch template, with template ID %s, does not exist.", id)
	case name != "":
		if lt := s.templateBy("", name); lt != nil {
			return lt, nil
		}
		return nil, errorf("ValidationError", "You must use a valid fully-formed launch template. The specified launch template, with template name %s, does not exist.", name)
	}
	return nil, errorf("ValidationError", "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.")
}

// primaryNIC is the prefix of the template's network interface with device index 0 (or its
// first), "" if it has none.
func primaryNIC(d q) string {
	nics := d.list("NetworkInterface")
	for _, n := range nics {
		if d.get(n+".DeviceIndex") == "0" {
			return n + "."
		}
	}
	if len(nics) > 0 {
		return nics[0] + "."
	}
	return ""
}

// templateGroups are the security groups of a template's data: its primary network
// interface's, or else its own SecurityGroupIds.
func templateGroups(d q) []string {
	if nic := primaryNIC(d); nic != "" && d.has(nic+"SecurityGroupId") {
		return d.strings(nic + "SecurityGroupId")
	}
	return d.strings("SecurityGroupId")
}

// launch starts one instance of group g in sn from version of lt, as Auto Scaling does: the
// version's AMI, type, user-data, metadata options, profile, security groups and instance tags,
// the group's tags that propagate at launch (over the template's of the same key) and
// aws:autoscaling:groupName.
func (s *Server) launch(g *asGroup, lt *launchTemplate, version int, sn *subnet) (*instance, *apiError) {
	d := lt.Versions[version-1]
	ip, ok := s.freeIP(sn)
	if !ok {
		return nil, insufficientAddresses(sn)
	}
	groups, e := s.instanceGroups(templateGroups(d), sn.VpcID)
	if e != nil {
		return nil, e
	}
	tags := tagsFor(d, "", "instance")
	set := func(k, v string) {
		for n := range tags {
			if tags[n].Key == k {
				tags[n].Value = v
				return
			}
		}
		tags = append(tags, xTag{k, v})
	}
	for _, t := range g.Tags {
		if t.Propagate {
			set(t.Key, t.Value)
		}
	}
	set("aws:autoscaling:groupName", g.Name)
	i := &instance{ID: s.id("i"), ImageID: d.get("ImageId"), State: instanceState{0, "pending"}, Type: cmp.Or(d.get("InstanceType"), "m1.small"),
		SubnetID: sn.ID, VpcID: sn.VpcID, PrivateIP: ip, PrivateDNS: privateDNS(s.Region, ip), UserData: d.get("UserData"),
		Groups: groups, Metadata: metadataFrom(d, "MetadataOptions"), TagSet: tags, group: g.Name, lt: lt.ID, ltVersion: version}
	if arn := d.get("IamInstanceProfile.Arn"); arn != "" {
		i.Profile = &profileRef{arn}
	} else if p := s.profiles[d.get("IamInstanceProfile.Name")]; p != nil {
		i.Profile = &profileRef{p.Arn}
	}
	if nic := primaryNIC(d); nic != "" && d.get(nic+"AssociatePublicIpAddress") == "true" {
		i.autoIP = launchIPPlan(s.launchIPs)
		i.PublicIP = i.autoIP
		s.launchIPs++
	}
	s.instances[i.ID] = i
	return i, nil
}

// groupMembers are the group's instances as DescribeAutoScalingGroups lists them: not the
// terminated ones.
func (s *Server) groupMembers(g *asGroup) []asgInstance {
	var out []asgInstance
	for _, id := range slices.Sorted(maps.Keys(s.instances)) {
		i := s.instances[id]
		if i.group != g.Name {
			continue
		}
		state := map[string]string{"pending": "Pending", "running": "InService", "shutting-down": "Terminating"}[i.State.Name]
		if state == "" {
			continue
		}
		if i.lifecycle != "" {
			state = i.lifecycle
		}
		az := ""
		if sn := s.subnets[i.SubnetID]; sn != nil {
			az = sn.AZ
		}
		ltName := "" // a template deleted since
		if t := s.templates[i.lt]; t != nil {
			ltName = t.Name
		}
		out = append(out, asgInstance{ID: i.ID, Type: i.Type, AZ: az, Lifecycle: state, Health: "Healthy",
			LaunchTemplate: asgTemplate{i.lt, ltName, fmt.Sprint(i.ltVersion)}})
	}
	return out
}

func (s *Server) describeASGs(in q) (*reply, *apiError) {
	names := in.strings("AutoScalingGroupNames.member")
	var list []*asGroup
	var keys []string
	for _, n := range slices.Sorted(maps.Keys(s.asgs)) {
		if len(names) == 0 || slices.Contains(names, n) {
			list, keys = append(list, s.asgs[n]), append(keys, n)
		}
	}
	pg, next, err := page(s, in, list, keys)
	if err != nil {
		return nil, err
	}
	for _, g := range pg {
		g.Instances = s.groupMembers(g)
	}
	rep := answer().add("AutoScalingGroups", members[*asGroup]{pg})
	if next != "" {
		rep.add("NextToken", next)
	}
	// A group being deleted is seen once more, "Delete in progress", then is gone, so the
	// GroupNotExists waiter polls for real.
	for n, g := range s.asgs {
		if g.Status != "" {
			delete(s.asgs, n)
		}
	}
	return rep, nil
}

func (s *Server) deleteASG(in q) (*reply, *apiError) {
	g := s.asgs[in.get("AutoScalingGroupName")]
	if g == nil {
		return nil, errorf("ValidationError", "AutoScalingGroup name not found - AutoScalingGroup '%s' not found", in.get("AutoScalingGroupName"))
	}
	if g.Desired > 0 && in.get("ForceDelete") != "true" {
		return nil, errorf("ResourceInUse", "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.")
	}
	// ForceDelete terminates the group's instances: they shut down now and are terminated on
	// the next DescribeInstances, as TerminateInstances' are.
	for _, i := range s.instances {
		if i.group == g.Name && i.State.Name != "terminated" {
			i.State = instanceState{32, "shutting-down"}
		}
	}
	g.Status = "Delete in progress"
	return answer(), nil
}
