package awstest

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

const ec2Version = "2016-11-15"

type vpc struct {
	ID     string `xml:"vpcId"`
	Cidr   string `xml:"cidrBlock"`
	State  string `xml:"state"`
	TagSet []xTag `xml:"tagSet>item"`
}

type subnet struct {
	ID     string `xml:"subnetId"`
	VpcID  string `xml:"vpcId"`
	Cidr   string `xml:"cidrBlock"`
	AZ     string `xml:"availabilityZone"`
	State  string `xml:"state"`
	TagSet []xTag `xml:"tagSet>item"`
}

type igwAttachment struct {
	VpcID string `xml:"vpcId"`
	State string `xml:"state"`
}

type igw struct {
	ID          string          `xml:"internetGatewayId"`
	Attachments []igwAttachment `xml:"attachmentSet>item"`
	TagSet      []xTag          `xml:"tagSet>item"`
}

type route struct {
	Dest    string `xml:"destinationCidrBlock"`
	Gateway string `xml:"gatewayId"`
	State   string `xml:"state"`
}

type rtAssociation struct {
	ID   string `xml:"routeTableAssociationId"`
	RTID string `xml:"routeTableId"`
	Main bool   `xml:"main"`
}

type routeTable struct {
	ID           string          `xml:"routeTableId"`
	VpcID        string          `xml:"vpcId"`
	Routes       []route         `xml:"routeSet>item"`
	Associations []rtAssociation `xml:"associationSet>item"`
	TagSet       []xTag          `xml:"tagSet>item"`
}

type ipRange struct {
	Cidr string `xml:"cidrIp"`
	Desc string `xml:"description,omitempty"`
}

type groupPair struct {
	GroupID string `xml:"groupId"`
}

type permission struct {
	Protocol string      `xml:"ipProtocol"`
	From     *int        `xml:"fromPort"`
	To       *int        `xml:"toPort"`
	Ranges   []ipRange   `xml:"ipRanges>item"`
	Groups   []groupPair `xml:"groups>item"`
}

type securityGroup struct {
	ID      string       `xml:"groupId"`
	Name    string       `xml:"groupName"`
	Desc    string       `xml:"groupDescription"`
	VpcID   string       `xml:"vpcId"`
	Ingress []permission `xml:"ipPermissions>item"`
	TagSet  []xTag       `xml:"tagSet>item"`
}

type volumeAttachment struct {
	VolumeID   string `xml:"volumeId"`
	InstanceID string `xml:"instanceId"`
	Device     string `xml:"device"`
	Status     string `xml:"status"`
}

type volume struct {
	ID          string             `xml:"volumeId"`
	Size        int                `xml:"size"`
	AZ          string             `xml:"availabilityZone"`
	Status      string             `xml:"status"`
	Type        string             `xml:"volumeType"`
	Encrypted   bool               `xml:"encrypted"`
	Attachments []volumeAttachment `xml:"attachmentSet>item"`
	TagSet      []xTag             `xml:"tagSet>item"`
}

type address struct {
	AllocationID  string `xml:"allocationId"`
	PublicIP      string `xml:"publicIp"`
	Domain        string `xml:"domain"`
	AssociationID string `xml:"associationId,omitempty"`
	InstanceID    string `xml:"instanceId,omitempty"`
	TagSet        []xTag `xml:"tagSet>item"`
}

type instanceState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

// MetadataOptions are an instance's metadata service settings.
type MetadataOptions struct {
	HttpTokens   string `xml:"httpTokens"`
	HopLimit     int    `xml:"httpPutResponseHopLimit"`
	HttpEndpoint string `xml:"httpEndpoint"`
	State        string `xml:"state"`
}

type profileRef struct {
	Arn string `xml:"arn"`
}

type instance struct {
	ID         string          `xml:"instanceId"`
	ImageID    string          `xml:"imageId"`
	State      instanceState   `xml:"instanceState"`
	PrivateDNS string          `xml:"privateDnsName"`
	Type       string          `xml:"instanceType"`
	SubnetID   string          `xml:"subnetId"`
	VpcID      string          `xml:"vpcId"`
	PrivateIP  string          `xml:"privateIpAddress"`
	PublicIP   string          `xml:"ipAddress,omitempty"`
	Groups     []groupPair     `xml:"groupSet>item"`
	Metadata   MetadataOptions `xml:"metadataOptions"`
	Profile    *profileRef     `xml:"iamInstanceProfile,omitempty"`
	TagSet     []xTag          `xml:"tagSet>item"`
	UserData   string          `xml:"-"` // base64, as given

	// autoIP is the public address given at launch (AssociatePublicIpAddress), which an
	// Elastic IP replaces while associated.
	autoIP string
	// group is the Auto Scaling group that launched the instance, from its template's version.
	group     string
	lt        string // the launch template's ID
	ltVersion int
	// lifecycle is Auto Scaling's state where EC2's does not say it: Terminating:Wait, held
	// by hook until waitUntil (its heartbeat timeout) or CompleteLifecycleAction.
	lifecycle, hook string
	waitUntil       time.Time
	// console is the tail of the console output (at most ConsoleOutputMax bytes), consoleAt
	// when it last changed.
	console   []byte
	consoleAt time.Time
}

// privateDNS is the name EC2 gives a private address in a VPC with DNS hostnames (the default
// ip-name hostnames): ip-10-0-0-23.<region>.compute.internal, ip-10-0-0-23.ec2.internal in
// us-east-1.
func privateDNS(region, ip string) string {
	if ip == "" {
		return ""
	}
	domain := region + ".compute.internal"
	if region == "us-east-1" {
		domain = "ec2.internal"
	}
	return "ip-" + strings.ReplaceAll(ip, ".", "-") + "." + domain
}

// usable is the range of addresses EC2 hands out in a subnet: all but the network address, the
// next three (the VPC router, DNS, reserved) and the last.
func usable(cidr string) (first, last netip.Addr) {
	p := netip.MustParsePrefix(cidr).Masked()
	base := p.Addr().As4()
	n := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	size := uint32(1) << (32 - p.Bits())
	return addr4(n + 4), addr4(n + size - 2)
}

func addr4(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// inUse says whether a live (not terminated) instance in the subnet has the private address.
func (s *Server) inUse(subnetID, ip string) bool {
	for _, o := range s.instances {
		if o.PrivateIP == ip && o.SubnetID == subnetID && o.State.Name != "terminated" {
			return true
		}
	}
	return false
}

// freeIP is the lowest usable address of the subnet no live instance in it has, as EC2 gives
// an instance launched without PrivateIpAddress one (EC2 picks any; the stand-in the lowest).
func (s *Server) freeIP(sn *subnet) (string, bool) {
	first, last := usable(sn.Cidr)
	for a := first; a.Compare(last) <= 0; a = a.Next() {
		if !s.inUse(sn.ID, a.String()) {
			return a.String(), true
		}
	}
	return "", false
}

func insufficientAddresses(sn *subnet) *apiError {
	return errorf("InsufficientFreeAddressesInSubnet", "There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", sn.ID)
}

// ConsoleOutputMax is how much console output GetConsoleOutput returns at most: the last 64 KiB,
// as EC2 does.
const ConsoleOutputMax = 64 << 10

func (i *instance) setConsole(b []byte) {
	if len(b) > ConsoleOutputMax {
		b = b[len(b)-ConsoleOutputMax:]
	}
	i.console, i.consoleAt = slices.Clone(b), time.Now()
}

// getConsoleOutput answers with the tail of the instance's console output, which tests set
// with SetConsole; none yet: no output element, as EC2 answers for an instance that has not
// written any.
func (s *Server) getConsoleOutput(in q) (*reply, *apiError) {
	if e := in.require("InstanceId"); e != nil {
		return nil, e
	}
	id := in.get("InstanceId")
	i := s.instances[id]
	if i == nil {
		return nil, errorf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
	}
	if l := in.get("Latest"); l != "" && l != "true" && l != "false" {
		return nil, errorf("InvalidParameterValue", "Value (%s) for parameter latest is invalid. Expected: 'true' or 'false'.", l)
	}
	at := i.consoleAt
	if at.IsZero() {
		at = time.Now()
	}
	rep := answer().add("instanceId", i.ID).add("timestamp", at.UTC().Format("2006-01-02T15:04:05.000Z"))
	if len(i.console) > 0 {
		rep.add("output", base64.StdEncoding.EncodeToString(i.console))
	}
	return rep, nil
}

type launchTemplate struct {
	ID      string `xml:"launchTemplateId"`
	Name    string `xml:"launchTemplateName"`
	Default int    `xml:"defaultVersionNumber"`
	Latest  int    `xml:"latestVersionNumber"`
	TagSet  []xTag `xml:"tagSet>item"`
	// Versions holds each version's LaunchTemplateData.*, as given; version n is Versions[n-1].
	Versions []q `xml:"-"`
}

// latest is the data of the newest version.
func (t *launchTemplate) latest() q { return t.Versions[len(t.Versions)-1] }

// resolve is the number of the version v names: $Latest, $Default or a number.
func (t *launchTemplate) resolve(v string) (int, bool) {
	n := 0
	switch v {
	case "$Latest":
		n = t.Latest
	case "$Default":
		n = t.Default
	default:
		n, _ = strconv.Atoi(v)
	}
	return n, n >= 1 && n <= len(t.Versions)
}

func (s *Server) ec2Handlers() map[string]func(q) (*reply, *apiError) {
	return map[string]func(q) (*reply, *apiError){
		"CreateVpc": s.createVpc, "DescribeVpcs": s.describeVpcs, "DeleteVpc": s.deleteVpc,
		"CreateSubnet": s.createSubnet, "DescribeSubnets": s.describeSubnets, "DeleteSubnet": s.deleteSubnet,
		"CreateInternetGateway": s.createIGW, "DescribeInternetGateways": s.describeIGWs, "AttachInternetGateway": s.attachIGW,
		"DetachInternetGateway": s.detachIGW, "DeleteInternetGateway": s.deleteIGW,
		"DescribeRouteTables": s.describeRouteTables, "CreateRoute": s.createRoute, "DeleteRoute": s.deleteRoute,
		"CreateSecurityGroup": s.createSG, "DescribeSecurityGroups": s.describeSGs, "AuthorizeSecurityGroupIngress": s.authorizeIngress,
		"DeleteSecurityGroup": s.deleteSG,
		"CreateVolume":        s.createVolume, "DescribeVolumes": s.describeVolumes, "AttachVolume": s.attachVolume, "DeleteVolume": s.deleteVolume,
		"AllocateAddress": s.allocateAddress, "DescribeAddresses": s.describeAddresses, "AssociateAddress": s.associateAddress,
		"DisassociateAddress": s.disassociateAddress, "ReleaseAddress": s.releaseAddress,
		"RunInstances": s.runInstances, "DescribeInstances": s.describeInstances, "TerminateInstances": s.terminateInstances,
		"CreateLaunchTemplate": s.createLaunchTemplate, "DescribeLaunchTemplates": s.describeLaunchTemplates,
		"DeleteLaunchTemplate": s.deleteLaunchTemplate, "CreateLaunchTemplateVersion": s.createLaunchTemplateVersion,
		"DescribeLaunchTemplateVersions": s.describeLaunchTemplateVersions, "ModifyLaunchTemplate": s.modifyLaunchTemplate,
		"GetConsoleOutput": s.getConsoleOutput, "DescribeImages": s.describeImages,
	}
}

// tagsFor are the tags TagSpecification.N gives resources of type rt.
func tagsFor(in q, prefix, rt string) []xTag {
	var tags []xTag
	for _, spec := range in.list(prefix + "TagSpecification") {
		if in.get(spec+".ResourceType") != rt {
			continue
		}
		for _, t := range in.list(spec + ".Tag") {
			tags = append(tags, xTag{in.get(t + ".Key"), in.get(t + ".Value")})
		}
	}
	return tags
}

func tagValue(tags []xTag, k string) (string, bool) {
	for _, t := range tags {
		if t.Key == k {
			return t.Value, true
		}
	}
	return "", false
}

type filterSpec struct {
	name   string
	values []string
}

func filters(in q) []filterSpec {
	var out []filterSpec
	for _, f := range in.list("Filter") {
		out = append(out, filterSpec{in.get(f + ".Name"), in.strings(f + ".Value")})
	}
	return out
}

// describe answers a Describe call: the resources named by idParam (all if none; no idParam:
// all), those that pass every filter, one page of them. A filter value may hold EC2's
// wildcards (see wildcard).
func describe[T any](s *Server, in q, all map[string]*T, idParam, notFound, setName string,
	tags func(*T) []xTag, field func(*T, string) ([]string, bool)) (*reply, *apiError) {
	var ids []string
	if idParam != "" {
		ids = in.strings(idParam)
	}
	for _, id := range ids {
		if all[id] == nil {
			return nil, errorf(notFound, "The ID '%s' does not exist", id)
		}
	}
	var list []*T
	var keys []string
	for _, id := range slices.Sorted(maps.Keys(all)) {
		if len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		r, ok := all[id], true
		for _, f := range filters(in) {
			var vals []string
			switch {
			case strings.HasPrefix(f.name, "tag:"):
				if v, has := tagValue(tags(r), strings.TrimPrefix(f.name, "tag:")); has {
					vals = []string{v}
				}
			case f.name == "tag-key":
				for _, t := range tags(r) {
					vals = append(vals, t.Key)
				}
			default:
				var known bool
				if vals, known = field(r, f.name); !known {
					return nil, errorf("InvalidParameterValue", "The filter '%s' is invalid", f.name)
				}
			}
			ok = ok && slices.ContainsFunc(vals, func(v string) bool {
				return slices.ContainsFunc(f.values, func(p string) bool { return wildcard(p, v) })
			})
		}
		if ok {
			list, keys = append(list, r), append(keys, id)
		}
	}
	pg, next, err := page(s, in, list, keys)
	if err != nil {
		return nil, err
	}
	rep := answer().add(setName, items[*T]{pg})
	if next != "" {
		rep.add("nextToken", next)
	}
	return rep, nil
}

func (s *Server) createVpc(in q) (*reply, *apiError) {
	if e := in.require("CidrBlock"); e != nil {
		return nil, e
	}
	p, err := netip.ParsePrefix(in.get("CidrBlock"))
	if err != nil || p.Bits() < 16 || p.Bits() > 28 {
		return nil, errorf("InvalidVpc.Range", "The CIDR '%s' is invalid.", in.get("CidrBlock"))
	}
	v := &vpc{ID: s.id("vpc"), Cidr: p.String(), State: "available", TagSet: tagsFor(in, "", "vpc")}
	s.vpcs[v.ID] = v
	// As AWS does: every VPC comes with a main route table and a default security group.
	rt := &routeTable{ID: s.id("rtb"), VpcID: v.ID, Routes: []route{{Dest: v.Cidr, Gateway: "local", State: "active"}}}
	rt.Associations = []rtAssociation{{ID: s.id("rtbassoc"), RTID: rt.ID, Main: true}}
	s.routes[rt.ID] = rt
	sg := &securityGroup{ID: s.id("sg"), Name: "default", Desc: "default VPC security group", VpcID: v.ID}
	s.groups[sg.ID] = sg
	return answer().add("vpc", v), nil
}

func (s *Server) describeVpcs(in q) (*reply, *apiError) {
	return describe(s, in, s.vpcs, "VpcId", "InvalidVpcID.NotFound", "vpcSet", func(v *vpc) []xTag { return v.TagSet },
		func(v *vpc, f string) ([]string, bool) {
			switch f {
			case "vpc-id":
				return []string{v.ID}, true
			case "state":
				return []string{v.State}, true
			case "cidr":
				return []string{v.Cidr}, true
			}
			return nil, false
		})
}

func (s *Server) deleteVpc(in q) (*reply, *apiError) {
	id := in.get("VpcId")
	if s.vpcs[id] == nil {
		return nil, errorf("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", id)
	}
	deps := 0
	for _, sn := range s.subnets {
		deps += count(sn.VpcID == id)
	}
	for _, g := range s.igws {
		for _, a := range g.Attachments {
			deps += count(a.VpcID == id)
		}
	}
	for _, g := range s.groups {
		deps += count(g.VpcID == id && g.Name != "default")
	}
	for _, rt := range s.routes {
		deps += count(rt.VpcID == id && !isMain(rt))
	}
	if deps > 0 {
		return nil, errorf("DependencyViolation", "The vpc '%s' has dependencies and cannot be deleted.", id)
	}
	delete(s.vpcs, id)
	for k, rt := range s.routes {
		if rt.VpcID == id {
			delete(s.routes, k)
		}
	}
	for k, g := range s.groups {
		if g.VpcID == id {
			delete(s.groups, k)
		}
	}
	return answer().add("return", true), nil
}

func count(b bool) int {
	if b {
		return 1
	}
	return 0
}

func isMain(rt *routeTable) bool {
	return slices.ContainsFunc(rt.Associations, func(a rtAssociation) bool { return a.Main })
}

func (s *Server) createSubnet(in q) (*reply, *apiError) {
	if e := in.require("VpcId", "CidrBlock"); e != nil {
		return nil, e
	}
	v := s.vpcs[in.get("VpcId")]
	if v == nil {
		return nil, errorf("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", in.get("VpcId"))
	}
	p, err := netip.ParsePrefix(in.get("CidrBlock"))
	vp, _ := netip.ParsePrefix(v.Cidr)
	if err != nil || !vp.Contains(p.Addr()) || p.Bits() < vp.Bits() || p.Bits() > 28 {
		return nil, errorf("InvalidSubnet.Range", "The CIDR '%s' is invalid.", in.get("CidrBlock"))
	}
	az := in.get("AvailabilityZone")
	if az == "" {
		az = s.Region + "a"
	}
	sn := &subnet{ID: s.id("subnet"), VpcID: v.ID, Cidr: p.String(), AZ: az, State: "available", TagSet: tagsFor(in, "", "subnet")}
	s.subnets[sn.ID] = sn
	return answer().add("subnet", sn), nil
}

func (s *Server) describeSubnets(in q) (*reply, *apiError) {
	return describe(s, in, s.subnets, "SubnetId", "InvalidSubnetID.NotFound", "subnetSet", func(v *subnet) []xTag { return v.TagSet },
		func(v *subnet, f string) ([]string, bool) {
			switch f {
			case "subnet-id":
				return []string{v.ID}, true
			case "vpc-id":
				return []string{v.VpcID}, true
			}
			return nil, false
		})
}

func (s *Server) deleteSubnet(in q) (*reply, *apiError) {
	id := in.get("SubnetId")
	if s.subnets[id] == nil {
		return nil, errorf("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
	}
	for _, i := range s.instances {
		if i.SubnetID == id && i.State.Name != "terminated" {
			return nil, errorf("DependencyViolation", "The subnet '%s' has dependencies and cannot be deleted.", id)
		}
	}
	delete(s.subnets, id)
	return answer().add("return", true), nil
}

func (s *Server) createIGW(in q) (*reply, *apiError) {
	g := &igw{ID: s.id("igw"), TagSet: tagsFor(in, "", "internet-gateway")}
	s.igws[g.ID] = g
	return answer().add("internetGateway", g), nil
}

func (s *Server) describeIGWs(in q) (*reply, *apiError) {
	return describe(s, in, s.igws, "InternetGatewayId", "InvalidInternetGatewayID.NotFound", "internetGatewaySet",
		func(v *igw) []xTag { return v.TagSet },
		func(v *igw, f string) ([]string, bool) {
			switch f {
			case "internet-gateway-id":
				return []string{v.ID}, true
			case "attachment.vpc-id":
				var out []string
				for _, a := range v.Attachments {
					out = append(out, a.VpcID)
				}
				return out, true
			}
			return nil, false
		})
}

func (s *Server) attachIGW(in q) (*reply, *apiError) {
	if e := in.require("InternetGatewayId", "VpcId"); e != nil {
		return nil, e
	}
	g := s.igws[in.get("InternetGatewayId")]
	if g == nil {
		return nil, errorf("InvalidInternetGatewayID.NotFound", "The internetGateway ID '%s' does not exist", in.get("InternetGatewayId"))
	}
	if s.vpcs[in.get("VpcId")] == nil {
		return nil, errorf("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", in.get("VpcId"))
	}
	if len(g.Attachments) > 0 {
		return nil, errorf("Resource.AlreadyAssociated", "resource %s is already attached to network %s", g.ID, g.Attachments[0].VpcID)
	}
	g.Attachments = []igwAttachment{{VpcID: in.get("VpcId"), State: "available"}}
	return answer().add("return", true), nil
}

func (s *Server) detachIGW(in q) (*reply, *apiError) {
	g := s.igws[in.get("InternetGatewayId")]
	if g == nil {
		return nil, errorf("InvalidInternetGatewayID.NotFound", "The internetGateway ID '%s' does not exist", in.get("InternetGatewayId"))
	}
	vpcID := in.get("VpcId")
	if len(g.Attachments) == 0 || g.Attachments[0].VpcID != vpcID {
		return nil, errorf("Gateway.NotAttached", "resource %s is not attached to network %s", g.ID, vpcID)
	}
	// AWS refuses while addresses in the VPC are mapped to public ones.
	for _, a := range s.addresses {
		if i := s.instances[a.InstanceID]; i != nil && i.VpcID == vpcID {
			return nil, errorf("DependencyViolation", "Network %s has some mapped public address(es). Please unmap those public address(es) before detaching the gateway.", vpcID)
		}
	}
	// So do public addresses given at launch, until their instance is terminated.
	for _, i := range s.instances {
		if i.VpcID == vpcID && i.PublicIP != "" && i.State.Name != "terminated" {
			return nil, errorf("DependencyViolation", "Network %s has some mapped public address(es). Please unmap those public address(es) before detaching the gateway.", vpcID)
		}
	}
	g.Attachments = nil
	return answer().add("return", true), nil
}

func (s *Server) deleteIGW(in q) (*reply, *apiError) {
	g := s.igws[in.get("InternetGatewayId")]
	if g == nil {
		return nil, errorf("InvalidInternetGatewayID.NotFound", "The internetGateway ID '%s' does not exist", in.get("InternetGatewayId"))
	}
	if len(g.Attachments) > 0 {
		return nil, errorf("DependencyViolation", "The internetGateway '%s' has dependencies and cannot be deleted.", g.ID)
	}
	delete(s.igws, g.ID)
	return answer().add("return", true), nil
}

func (s *Server) describeRouteTables(in q) (*reply, *apiError) {
	return describe(s, in, s.routes, "RouteTableId", "InvalidRouteTableID.NotFound", "routeTableSet",
		func(v *routeTable) []xTag { return v.TagSet },
		func(v *routeTable, f string) ([]string, bool) {
			switch f {
			case "route-table-id":
				return []string{v.ID}, true
			case "vpc-id":
				return []string{v.VpcID}, true
			case "association.main":
				return []string{fmt.Sprint(isMain(v))}, true
			}
			return nil, false
		})
}

func (s *Server) createRoute(in q) (*reply, *apiError) {
	if e := in.require("RouteTableId", "DestinationCidrBlock"); e != nil {
		return nil, e
	}
	rt := s.routes[in.get("RouteTableId")]
	if rt == nil {
		return nil, errorf("InvalidRouteTableID.NotFound", "The routeTable ID '%s' does not exist", in.get("RouteTableId"))
	}
	g := s.igws[in.get("GatewayId")]
	if g == nil {
		return nil, errorf("InvalidGatewayID.NotFound", "The gateway ID '%s' does not exist", in.get("GatewayId"))
	}
	if len(g.Attachments) == 0 || g.Attachments[0].VpcID != rt.VpcID {
		return nil, errorf("InvalidParameterValue", "route table %s and network gateway %s belong to different networks", rt.ID, g.ID)
	}
	for _, r := range rt.Routes {
		if r.Dest == in.get("DestinationCidrBlock") {
			return nil, errorf("RouteAlreadyExists", "The route identified by %s already exists.", r.Dest)
		}
	}
	rt.Routes = append(rt.Routes, route{Dest: in.get("DestinationCidrBlock"), Gateway: g.ID, State: "active"})
	return answer().add("return", true), nil
}

func (s *Server) deleteRoute(in q) (*reply, *apiError) {
	rt := s.routes[in.get("RouteTableId")]
	if rt == nil {
		return nil, errorf("InvalidRouteTableID.NotFound", "The routeTable ID '%s' does not exist", in.get("RouteTableId"))
	}
	n := len(rt.Routes)
	rt.Routes = slices.DeleteFunc(rt.Routes, func(r route) bool { return r.Dest == in.get("DestinationCidrBlock") && r.Gateway != "local" })
	if len(rt.Routes) == n {
		return nil, errorf("InvalidRoute.NotFound", "no route with destination-cidr-block %s in route table %s", in.get("DestinationCidrBlock"), rt.ID)
	}
	return answer(), nil
}

func (s *Server) createSG(in q) (*reply, *apiError) {
	if e := in.require("GroupName", "GroupDescription"); e != nil {
		return nil, e
	}
	if s.vpcs[in.get("VpcId")] == nil {
		return nil, errorf("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", in.get("VpcId"))
	}
	for _, g := range s.groups {
		if g.VpcID == in.get("VpcId") && g.Name == in.get("GroupName") {
			return nil, errorf("InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", g.Name, g.VpcID)
		}
	}
	g := &securityGroup{ID: s.id("sg"), Name: in.get("GroupName"), Desc: in.get("GroupDescription"), VpcID: in.get("VpcId"),
		TagSet: tagsFor(in, "", "security-group")}
	s.groups[g.ID] = g
	return answer().add("groupId", g.ID).add("tagSet", items[xTag]{g.TagSet}), nil
}

func (s *Server) describeSGs(in q) (*reply, *apiError) {
	return describe(s, in, s.groups, "GroupId", "InvalidGroup.NotFound", "securityGroupInfo",
		func(v *securityGroup) []xTag { return v.TagSet },
		func(v *securityGroup, f string) ([]string, bool) {
			switch f {
			case "group-id":
				return []string{v.ID}, true
			case "group-name":
				return []string{v.Name}, true
			case "vpc-id":
				return []string{v.VpcID}, true
			}
			return nil, false
		})
}

func (s *Server) authorizeIngress(in q) (*reply, *apiError) {
	if e := in.require("GroupId", "IpPermissions"); e != nil {
		return nil, e
	}
	g := s.groups[in.get("GroupId")]
	if g == nil {
		return nil, errorf("InvalidGroup.NotFound", "The security group '%s' does not exist", in.get("GroupId"))
	}
	for _, p := range in.list("IpPermissions") {
		perm := permission{Protocol: in.get(p + ".IpProtocol")}
		if perm.Protocol == "" {
			return nil, errorf("MissingParameter", "IpProtocol is required")
		}
		if in.has(p + ".FromPort") {
			var f, t int
			fmt.Sscan(in.get(p+".FromPort"), &f)
			fmt.Sscan(in.get(p+".ToPort"), &t)
			perm.From, perm.To = &f, &t
		}
		for _, r := range in.list(p + ".IpRanges") {
			if _, err := netip.ParsePrefix(in.get(r + ".CidrIp")); err != nil {
				return nil, errorf("InvalidParameterValue", "CIDR block %s is malformed", in.get(r+".CidrIp"))
			}
			perm.Ranges = append(perm.Ranges, ipRange{in.get(r + ".CidrIp"), in.get(r + ".Description")})
		}
		for _, gp := range in.list(p + ".Groups") {
			if s.groups[in.get(gp+".GroupId")] == nil {
				return nil, errorf("InvalidGroup.NotFound", "The security group '%s' does not exist", in.get(gp+".GroupId"))
			}
			perm.Groups = append(perm.Groups, groupPair{in.get(gp + ".GroupId")})
		}
		for _, have := range g.Ingress {
			if samePerm(have, perm) {
				return nil, errorf("InvalidPermission.Duplicate", "the specified rule already exists")
			}
		}
		g.Ingress = append(g.Ingress, perm)
	}
	return answer().add("return", true), nil
}

func samePerm(a, b permission) bool {
	return a.Protocol == b.Protocol && fmt.Sprint(a.From, a.To) == fmt.Sprint(b.From, b.To) && slices.Equal(a.Ranges, b.Ranges) &&
		slices.Equal(a.Groups, b.Groups) && (a.From == nil || *a.From == *b.From && *a.To == *b.To)
}

func (s *Server) deleteSG(in q) (*reply, *apiError) {
	g := s.groups[in.get("GroupId")]
	if g == nil {
		return nil, errorf("InvalidGroup.NotFound", "The security group '%s' does not exist", in.get("GroupId"))
	}
	for _, i := range s.instances {
		if i.State.Name != "terminated" && slices.Contains(i.Groups, groupPair{g.ID}) {
			return nil, errorf("DependencyViolation", "resource %s has a dependent object", g.ID)
		}
	}
	for _, other := range s.groups {
		for _, p := range other.Ingress {
			if other != g && slices.Contains(p.Groups, groupPair{g.ID}) {
				return nil, errorf("DependencyViolation", "resource %s has a dependent object", g.ID)
			}
		}
	}
	delete(s.groups, g.ID)
	return answer().add("return", true), nil
}

func (s *Server) createVolume(in q) (*reply, *apiError) {
	if e := in.require("AvailabilityZone"); e != nil {
		return nil, e
	}
	if !strings.HasPrefix(in.get("AvailabilityZone"), s.Region) {
		return nil, errorf("InvalidParameterValue", "Invalid availability zone: [%s]", in.get("AvailabilityZone"))
	}
	v := &volume{ID: s.id("vol"), AZ: in.get("AvailabilityZone"), Status: "creating", Type: cmp.Or(in.get("VolumeType"), "gp2"),
		Encrypted: in.get("Encrypted") == "true", TagSet: tagsFor(in, "", "volume")}
	fmt.Sscan(in.get("Size"), &v.Size)
	if v.Size <= 0 {
		return nil, errorf("MissingParameter", "The request must contain the parameter size or snapshotId")
	}
	s.volumes[v.ID] = v
	rep := answer()
	rep.add("volumeId", v.ID).add("size", v.Size).add("availabilityZone", v.AZ).add("status", v.Status).
		add("volumeType", v.Type).add("encrypted", v.Encrypted).add("tagSet", items[xTag]{v.TagSet})
	return rep, nil
}

func (s *Server) describeVolumes(in q) (*reply, *apiError) {
	rep, err := describe(s, in, s.volumes, "VolumeId", "InvalidVolume.NotFound", "volumeSet",
		func(v *volume) []xTag { return v.TagSet },
		func(v *volume, f string) ([]string, bool) {
			switch f {
			case "volume-id":
				return []string{v.ID}, true
			case "status":
				return []string{v.Status}, true
			case "attachment.instance-id":
				var out []string
				for _, a := range v.Attachments {
					out = append(out, a.InstanceID)
				}
				return out, true
			}
			return nil, false
		})
	// A new volume becomes available after it was seen creating once: waiters poll for real.
	for _, v := range s.volumes {
		if v.Status == "creating" {
			v.Status = "available"
		}
	}
	return rep, err
}

func (s *Server) attachVolume(in q) (*reply, *apiError) {
	if e := in.require("VolumeId", "InstanceId", "Device"); e != nil {
		return nil, e
	}
	v, i := s.volumes[in.get("VolumeId")], s.instances[in.get("InstanceId")]
	switch {
	case v == nil:
		return nil, errorf("InvalidVolume.NotFound", "The volume '%s' does not exist.", in.get("VolumeId"))
	case i == nil || i.State.Name == "terminated":
		return nil, errorf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", in.get("InstanceId"))
	case v.Status != "available":
		return nil, errorf("IncorrectState", "vol '%s' is not 'available'.", v.ID)
	case s.subnets[i.SubnetID] == nil || s.subnets[i.SubnetID].AZ != v.AZ:
		return nil, errorf("InvalidVolume.ZoneMismatch", "The volume '%s' is not in the same availability zone as instance '%s'", v.ID, i.ID)
	}
	a := volumeAttachment{VolumeID: v.ID, InstanceID: i.ID, Device: in.get("Device"), Status: "attached"}
	v.Status, v.Attachments = "in-use", []volumeAttachment{a}
	return answer().add("volumeId", v.ID).add("instanceId", i.ID).add("device", a.Device).add("status", "attaching"), nil
}

func (s *Server) deleteVolume(in q) (*reply, *apiError) {
	v := s.volumes[in.get("VolumeId")]
	if v == nil {
		return nil, errorf("InvalidVolume.NotFound", "The volume '%s' does not exist.", in.get("VolumeId"))
	}
	if v.Status == "in-use" {
		return nil, errorf("VolumeInUse", "Volume %s is currently attached to %s", v.ID, v.Attachments[0].InstanceID)
	}
	delete(s.volumes, v.ID)
	return answer().add("return", true), nil
}

func (s *Server) allocateAddress(in q) (*reply, *apiError) {
	a := &address{AllocationID: s.id("eipalloc"), PublicIP: AddressPlan(s.allocated), Domain: "vpc",
		TagSet: tagsFor(in, "", "elastic-ip")}
	s.allocated++
	s.addresses[a.AllocationID] = a
	return answer().add("publicIp", a.PublicIP).add("allocationId", a.AllocationID).add("domain", a.Domain), nil
}

// AddressPlan is the address of the nth AllocateAddress (from 0): 127.0.113.10, .11, ...;
// a released address is not handed out again. Elastic IPs are loopback addresses so that a
// client following one (kubeup asking the API server at the master's address) sends nothing
// off this host: test traffic only goes to loopback.
func AddressPlan(n int) string { return loopback(113, n) }

// launchIPPlan is the public address of the nth instance given one at launch (from 0):
// 127.0.112.10, .11, ...; loopback too.
func launchIPPlan(n int) string { return loopback(112, n) }

// loopback is 127.0.<third>.10 plus n (carrying into the next third octet past .255).
func loopback(third byte, n int) string {
	return addr4((uint32(127)<<24 | uint32(third)<<8) + uint32(10+n)).String()
}

func (s *Server) describeAddresses(in q) (*reply, *apiError) {
	// DescribeAddresses does not page.
	saved := s.PageSize
	s.PageSize = 1 << 30
	defer func() { s.PageSize = saved }()
	return describe(s, in, s.addresses, "AllocationId", "InvalidAllocationID.NotFound", "addressesSet",
		func(v *address) []xTag { return v.TagSet },
		func(v *address, f string) ([]string, bool) {
			switch f {
			case "allocation-id":
				return []string{v.AllocationID}, true
			case "public-ip":
				return []string{v.PublicIP}, true
			case "instance-id":
				return []string{v.InstanceID}, true
			}
			return nil, false
		})
}

func (s *Server) associateAddress(in q) (*reply, *apiError) {
	a, i := s.addresses[in.get("AllocationId")], s.instances[in.get("InstanceId")]
	switch {
	case a == nil:
		return nil, errorf("InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist", in.get("AllocationId"))
	case i == nil || i.State.Name == "terminated":
		return nil, errorf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", in.get("InstanceId"))
	case i.State.Name != "running":
		return nil, errorf("IncorrectInstanceState", "The pending-instance-running instance to which '%s' is attached is not in a valid state for this operation", i.ID)
	case a.InstanceID != "" && a.InstanceID != i.ID && in.get("AllowReassociation") != "true":
		return nil, errorf("Resource.AlreadyAssociated", "resource %s is already associated with associate-id %s", a.AllocationID, a.AssociationID)
	}
	a.AssociationID, a.InstanceID, i.PublicIP = s.id("eipassoc"), i.ID, a.PublicIP
	return answer().add("return", true).add("associationId", a.AssociationID), nil
}

func (s *Server) disassociateAddress(in q) (*reply, *apiError) {
	for _, a := range s.addresses {
		if a.AssociationID != "" && a.AssociationID == in.get("AssociationId") {
			s.unmap(a)
			return answer().add("return", true), nil
		}
	}
	return nil, errorf("InvalidAssociationID.NotFound", "The association ID '%s' does not exist", in.get("AssociationId"))
}

func (s *Server) unmap(a *address) {
	if i := s.instances[a.InstanceID]; i != nil {
		i.PublicIP = i.autoIP
	}
	a.AssociationID, a.InstanceID = "", ""
}

func (s *Server) releaseAddress(in q) (*reply, *apiError) {
	a := s.addresses[in.get("AllocationId")]
	if a == nil {
		return nil, errorf("InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist", in.get("AllocationId"))
	}
	if a.AssociationID != "" {
		return nil, errorf("InvalidIPAddress.InUse", "Address %s is in use.", a.PublicIP)
	}
	delete(s.addresses, a.AllocationID)
	return answer().add("return", true), nil
}

func (s *Server) runInstances(in q) (*reply, *apiError) {
	if e := in.require("ImageId", "MinCount", "MaxCount"); e != nil {
		return nil, e
	}
	if in.get("MinCount") != "1" || in.get("MaxCount") != "1" {
		return nil, errorf("InvalidParameterValue", "the stand-in starts one instance per call")
	}
	sn := s.subnets[in.get("SubnetId")]
	if sn == nil {
		return nil, errorf("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", in.get("SubnetId"))
	}
	i := &instance{ID: s.id("i"), ImageID: in.get("ImageId"), State: instanceState{0, "pending"}, Type: cmp.Or(in.get("InstanceType"), "m1.small"),
		SubnetID: sn.ID, VpcID: sn.VpcID, PrivateIP: in.get("PrivateIpAddress"), UserData: in.get("UserData"),
		TagSet: tagsFor(in, "", "instance")}
	if i.PrivateIP != "" {
		ip, err := netip.ParseAddr(i.PrivateIP)
		p, _ := netip.ParsePrefix(sn.Cidr)
		if err != nil || !p.Masked().Contains(ip) {
			return nil, errorf("InvalidParameterValue", "Address %s does not fall within the subnet's address range", i.PrivateIP)
		}
		if first, last := usable(sn.Cidr); ip.Less(first) || last.Less(ip) {
			return nil, errorf("InvalidParameterValue", "Address %s is in subnet's reserved address range", i.PrivateIP)
		}
		if s.inUse(sn.ID, i.PrivateIP) {
			return nil, errorf("InvalidIPAddress.InUse", "Address %s is in use.", i.PrivateIP)
		}
	} else {
		ip, ok := s.freeIP(sn)
		if !ok {
			return nil, insufficientAddresses(sn)
		}
		i.PrivateIP = ip
	}
	i.PrivateDNS = privateDNS(s.Region, i.PrivateIP)
	groups, e := s.instanceGroups(in.strings("SecurityGroupId"), sn.VpcID)
	if e != nil {
		return nil, e
	}
	i.Groups = groups
	i.Metadata = metadataFrom(in, "MetadataOptions")
	if arn := in.get("IamInstanceProfile.Arn"); arn != "" {
		if !s.profileARN(arn) {
			return nil, errorf("InvalidParameterValue", "Value (%s) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN", arn)
		}
		i.Profile = &profileRef{arn}
	}
	s.instances[i.ID] = i
	return answer().add("reservationId", s.id("r")).add("ownerId", "123456789012").add("instancesSet", items[*instance]{[]*instance{i}}), nil
}

// instanceGroups are the security groups of an instance launched in vpcID with ids: the VPC's
// default group when none is given, as EC2 does.
func (s *Server) instanceGroups(ids []string, vpcID string) ([]groupPair, *apiError) {
	var out []groupPair
	for _, g := range ids {
		sg := s.groups[g]
		if sg == nil || sg.VpcID != vpcID {
			return nil, errorf("InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", g, vpcID)
		}
		out = append(out, groupPair{g})
	}
	if len(out) == 0 {
		for _, id := range slices.Sorted(maps.Keys(s.groups)) {
			if g := s.groups[id]; g.VpcID == vpcID && g.Name == "default" {
				out = append(out, groupPair{id})
			}
		}
	}
	return out, nil
}

func metadataFrom(in q, prefix string) MetadataOptions {
	m := MetadataOptions{HttpTokens: cmp.Or(in.get(prefix+".HttpTokens"), "optional"), HopLimit: 1,
		HttpEndpoint: cmp.Or(in.get(prefix+".HttpEndpoint"), "enabled"), State: "applied"}
	if in.has(prefix + ".HttpPutResponseHopLimit") {
		fmt.Sscan(in.get(prefix+".HttpPutResponseHopLimit"), &m.HopLimit)
	}
	return m
}

type reservation struct {
	ID        string      `xml:"reservationId"`
	Owner     string      `xml:"ownerId"`
	Instances []*instance `xml:"instancesSet>item"`
}

func (s *Server) describeInstances(in q) (*reply, *apiError) {
	inner, err := describe(s, in, s.instances, "InstanceId", "InvalidInstanceID.NotFound", "x",
		func(v *instance) []xTag { return v.TagSet },
		func(v *instance, f string) ([]string, bool) {
			switch f {
			case "instance-id":
				return []string{v.ID}, true
			case "instance-state-name":
				return []string{v.State.Name}, true
			case "vpc-id":
				return []string{v.VpcID}, true
			case "subnet-id":
				return []string{v.SubnetID}, true
			case "private-ip-address":
				return []string{v.PrivateIP}, true
			case "private-dns-name":
				return []string{v.PrivateDNS}, true
			case "ip-address":
				return []string{v.PublicIP}, true
			}
			return nil, false
		})
	if err != nil {
		return nil, err
	}
	// One reservation per instance, as RunInstances made them one at a time.
	var res []reservation
	for _, i := range inner.parts[0].v.(items[*instance]).Items {
		res = append(res, reservation{"r-" + i.ID[2:], "123456789012", []*instance{i}})
	}
	rep := answer().add("reservationSet", items[reservation]{res})
	if len(inner.parts) > 1 {
		rep.add("nextToken", inner.parts[1].v)
	}
	// Instances move on one state per Describe, so waiters poll for real.
	for _, i := range s.instances {
		switch i.State.Name {
		case "pending":
			i.State = instanceState{16, "running"}
		case "shutting-down":
			i.State = instanceState{48, "terminated"}
			s.released(i)
		}
	}
	return rep, nil
}

// released frees what a terminated instance held: its volumes, its Elastic IP and the public
// address it was given at launch.
func (s *Server) released(i *instance) {
	for _, v := range s.volumes {
		if len(v.Attachments) > 0 && v.Attachments[0].InstanceID == i.ID {
			v.Status, v.Attachments = "available", nil
		}
	}
	for _, a := range s.addresses {
		if a.InstanceID == i.ID {
			s.unmap(a)
		}
	}
	i.autoIP, i.PublicIP = "", ""
}

type stateChange struct {
	ID       string        `xml:"instanceId"`
	Current  instanceState `xml:"currentState"`
	Previous instanceState `xml:"previousState"`
}

func (s *Server) terminateInstances(in q) (*reply, *apiError) {
	if e := in.require("InstanceId"); e != nil {
		return nil, e
	}
	var changes []stateChange
	for _, id := range in.strings("InstanceId") {
		i := s.instances[id]
		if i == nil {
			return nil, errorf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
		prev := i.State
		if i.State.Name != "terminated" {
			i.State = instanceState{32, "shutting-down"}
		}
		changes = append(changes, stateChange{id, i.State, prev})
	}
	return answer().add("instancesSet", items[stateChange]{changes}), nil
}

func (s *Server) createLaunchTemplate(in q) (*reply, *apiError) {
	if e := in.require("LaunchTemplateName", "LaunchTemplateData"); e != nil {
		return nil, e
	}
	for _, t := range s.templates {
		if t.Name == in.get("LaunchTemplateName") {
			return nil, errorf("InvalidLaunchTemplateName.AlreadyExistsException", "Launch template name already in use.")
		}
	}
	data, e := s.templateData(in)
	if e != nil {
		return nil, e
	}
	t := &launchTemplate{ID: s.id("lt"), Name: in.get("LaunchTemplateName"), Default: 1, Latest: 1,
		TagSet: tagsFor(in, "", "launch-template"), Versions: []q{data}}
	s.templates[t.ID] = t
	return answer().add("launchTemplate", t), nil
}

func (s *Server) describeLaunchTemplates(in q) (*reply, *apiError) {
	for _, n := range in.strings("LaunchTemplateName") {
		found := false
		for _, t := range s.templates {
			found = found || t.Name == n
		}
		if !found {
			return nil, errorf("InvalidLaunchTemplateName.NotFoundException", "At least one of the launch templates specified in the request does not exist.")
		}
	}
	return describe(s, in, s.templates, "LaunchTemplateId", "InvalidLaunchTemplateId.NotFound", "launchTemplates",
		func(v *launchTemplate) []xTag { return v.TagSet },
		func(v *launchTemplate, f string) ([]string, bool) {
			if f == "launch-template-name" {
				return []string{v.Name}, true
			}
			return nil, false
		})
}

func (s *Server) deleteLaunchTemplate(in q) (*reply, *apiError) {
	t := s.templates[in.get("LaunchTemplateId")]
	if t == nil {
		return nil, errorf("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", in.get("LaunchTemplateId"))
	}
	delete(s.templates, t.ID)
	return answer().add("launchTemplate", t), nil
}

func (s *Server) templateData(in q) (q, *apiError) {
	data := q{}
	for k, v := range in {
		if strings.HasPrefix(k, "LaunchTemplateData.") {
			data[strings.TrimPrefix(k, "LaunchTemplateData.")] = v
		}
	}
	for _, g := range data.strings("NetworkInterface.1.SecurityGroupId") {
		if s.groups[g] == nil {
			return nil, errorf("InvalidGroup.NotFound", "The security group '%s' does not exist", g)
		}
	}
	return data, nil
}

type ltData struct {
	ImageID      string      `xml:"imageId,omitempty"`
	InstanceType string      `xml:"instanceType,omitempty"`
	UserData     string      `xml:"userData,omitempty"`
	TagSpecs     []ltTagSpec `xml:"tagSpecificationSet>item,omitempty"`
}

// ltTagSpec is a version's tags for the resources it launches (instances here, the only type
// this stand-in launches from a template).
type ltTagSpec struct {
	ResourceType string `xml:"resourceType"`
	Tags         []xTag `xml:"tagSet>item"`
}

type ltVersion struct {
	ID      string `xml:"launchTemplateId"`
	Name    string `xml:"launchTemplateName"`
	Number  int    `xml:"versionNumber"`
	Default bool   `xml:"defaultVersion"`
	Data    ltData `xml:"launchTemplateData"`
}

func (t *launchTemplate) version(n int) ltVersion {
	d := t.Versions[n-1]
	data := ltData{ImageID: d.get("ImageId"), InstanceType: d.get("InstanceType"), UserData: d.get("UserData")}
	if tags := tagsFor(d, "", "instance"); len(tags) > 0 {
		data.TagSpecs = []ltTagSpec{{ResourceType: "instance", Tags: tags}}
	}
	return ltVersion{t.ID, t.Name, n, n == t.Default, data}
}

func (s *Server) createLaunchTemplateVersion(in q) (*reply, *apiError) {
	if e := in.require("LaunchTemplateData"); e != nil {
		return nil, e
	}
	t, e := s.template(in)
	if e != nil {
		return nil, e
	}
	data, e := s.templateData(in)
	if e != nil {
		return nil, e
	}
	// SourceVersion: the new version is that version's data with the fields given replacing
	// the source's (field by field at the top level of LaunchTemplateData, as EC2 documents).
	if v := in.get("SourceVersion"); v != "" {
		n, _ := strconv.Atoi(v)
		if n < 1 || n > len(t.Versions) {
			return nil, errorf("InvalidLaunchTemplateId.VersionNotFound", "Could not find launch template version %s", v)
		}
		given := map[string]bool{}
		for k := range data {
			given[strings.SplitN(k, ".", 2)[0]] = true
		}
		merged := q{}
		for k, val := range t.Versions[n-1] {
			if !given[strings.SplitN(k, ".", 2)[0]] {
				merged[k] = val
			}
		}
		for k, val := range data {
			merged[k] = val
		}
		data = merged
	}
	t.Versions = append(t.Versions, data)
	t.Latest = len(t.Versions)
	return answer().add("launchTemplateVersion", t.version(t.Latest)), nil
}

// template finds the launch template a call names by LaunchTemplateId or LaunchTemplateName,
// as EC2 lets every launch template call do (exactly one of the two).
func (s *Server) template(in q) (*launchTemplate, *apiError) {
	id, name := in.get("LaunchTemplateId"), in.get("LaunchTemplateName")
	switch {
	case id != "" && name != "":
		return nil, errorf("InvalidParameterCombination", "The parameters 'LaunchTemplateId' and 'LaunchTemplateName' cannot be used together.")
	case id != "":
		if t := s.templateBy(id, ""); t != nil {
			return t, nil
		}
		return nil, errorf("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", id)
	case name != "":
		if t := s.templateBy("", name); t != nil {
			return t, nil
		}
		return nil, errorf("InvalidLaunchTemplateName.NotFoundException", "The specified launch template, with template name %s, does not exist.", name)
	}
	return nil, errorf("MissingParameter", "The request must contain the parameter LaunchTemplateId or LaunchTemplateName")
}

// templateBy is the launch template with that id, or else with that name (nil if none). EC2
// and Auto Scaling look templates up alike and refuse a missing one each in its own words.
func (s *Server) templateBy(id, name string) *launchTemplate {
	if id != "" {
		return s.templates[id]
	}
	for _, t := range s.templates {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// modifyLaunchTemplate sets a template's default version (SetDefaultVersion, a version number,
// the only modification EC2 offers) and answers with the template.
func (s *Server) modifyLaunchTemplate(in q) (*reply, *apiError) {
	t, e := s.template(in)
	if e != nil {
		return nil, e
	}
	if v := in.get("SetDefaultVersion"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, errorf("InvalidLaunchTemplateId.VersionNotFound", "Could not find launch template version %s", v)
		}
		if n > len(t.Versions) {
			return nil, errorf("InvalidLaunchTemplateId.VersionNotFound", "Could not find launch template version %d", n)
		}
		t.Default = n
	}
	return answer().add("launchTemplate", t), nil
}

// describeLaunchTemplateVersions answers for one template, by version numbers or $Latest and
// $Default (all versions if none is named).
func (s *Server) describeLaunchTemplateVersions(in q) (*reply, *apiError) {
	t := s.templates[in.get("LaunchTemplateId")]
	if t == nil {
		return nil, errorf("InvalidLaunchTemplateId.NotFound", "The specified launch template, with template ID %s, does not exist.", in.get("LaunchTemplateId"))
	}
	var list []ltVersion
	names := in.strings("LaunchTemplateVersion")
	if len(names) == 0 {
		for n := range t.Versions {
			list = append(list, t.version(n+1))
		}
	}
	for _, v := range names {
		n, ok := t.resolve(v)
		if !ok {
			return nil, errorf("InvalidLaunchTemplateId.VersionNotFound", "Could not find launch template version %s", v)
		}
		list = append(list, t.version(n))
	}
	// The list is the same on every page: its keys are the positions.
	keys := make([]string, len(list))
	for n := range keys {
		keys[n] = fmt.Sprintf("%08d", n)
	}
	pg, next, e := page(s, in, list, keys)
	if e != nil {
		return nil, e
	}
	rep := answer().add("launchTemplateVersionSet", items[ltVersion]{pg})
	if next != "" {
		rep.add("nextToken", next)
	}
	return rep, nil
}
