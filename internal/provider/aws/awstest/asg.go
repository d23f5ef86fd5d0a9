package awstest

import (
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
}

func (s *Server) asgHandlers() map[string]func(q) (*reply, *apiError) {
	return map[string]func(q) (*reply, *apiError){
		"CreateAutoScalingGroup": s.createASG, "DescribeAutoScalingGroups": s.describeASGs, "DeleteAutoScalingGroup": s.deleteASG,
	}
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
	lt := s.templates[in.get("LaunchTemplate.LaunchTemplateId")]
	if lt == nil {
		return nil, errorf("ValidationError", "You must use a valid fully-formed launch template. The specified launch template, with template ID %s, does not exist.", in.get("LaunchTemplate.LaunchTemplateId"))
	}
	g.LaunchTemplate = asgTemplate{lt.ID, lt.Name, in.get("LaunchTemplate.Version")}
	for _, id := range strings.Split(g.Subnets, ",") {
		sn := s.subnets[strings.TrimSpace(id)]
		if sn == nil {
			return nil, errorf("ValidationError", "The subnet ID '%s' does not exist", id)
		}
		g.Zones = append(g.Zones, sn.AZ)
	}
	for _, t := range in.list("Tags.member") {
		g.Tags = append(g.Tags, asgTag{name, "auto-scaling-group", in.get(t + ".Key"), in.get(t + ".Value"), in.get(t+".PropagateAtLaunch") == "true"})
	}
	s.asgs[name] = g
	return answer(), nil
}

func (s *Server) describeASGs(in q) (*reply, *apiError) {
	names := in.strings("AutoScalingGroupNames.member")
	var list []*asGroup
	for _, n := range slices.Sorted(maps.Keys(s.asgs)) {
		if len(names) == 0 || slices.Contains(names, n) {
			list = append(list, s.asgs[n])
		}
	}
	pg, next, err := page(s, in, list)
	if err != nil {
		return nil, err
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
	g.Status = "Delete in progress"
	return answer(), nil
}
