package awstest

import (
	"encoding/json"
	"net/url"
	"slices"
)

const iamVersion = "2010-05-08"

type iamTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type role struct {
	Name     string            `xml:"RoleName"`
	ID       string            `xml:"RoleId"`
	Arn      string            `xml:"Arn"`
	Path     string            `xml:"Path"`
	Created  string            `xml:"CreateDate"`
	Trust    string            `xml:"AssumeRolePolicyDocument"`
	Tags     []iamTag          `xml:"Tags>member"`
	Policies map[string]string `xml:"-"`
}

type profile struct {
	Name    string   `xml:"InstanceProfileName"`
	ID      string   `xml:"InstanceProfileId"`
	Arn     string   `xml:"Arn"`
	Path    string   `xml:"Path"`
	Created string   `xml:"CreateDate"`
	Roles   []*role  `xml:"Roles>member"`
	Tags    []iamTag `xml:"Tags>member"`
}

func (s *Server) iamHandlers() map[string]func(q) (*reply, *apiError) {
	return map[string]func(q) (*reply, *apiError){
		"GetRole": s.getRole, "CreateRole": s.createRole, "DeleteRole": s.deleteRole,
		"GetRolePolicy": s.getRolePolicy, "PutRolePolicy": s.putRolePolicy, "DeleteRolePolicy": s.deleteRolePolicy,
		"GetInstanceProfile": s.getProfile, "CreateInstanceProfile": s.createProfile, "DeleteInstanceProfile": s.deleteProfile,
		"AddRoleToInstanceProfile": s.addRole, "RemoveRoleFromInstanceProfile": s.removeRole,
	}
}

func iamTags(in q) []iamTag {
	var tags []iamTag
	for _, t := range in.list("Tags.member") {
		tags = append(tags, iamTag{in.get(t + ".Key"), in.get(t + ".Value")})
	}
	return tags
}

func (s *Server) roleNamed(in q) (*role, *apiError) {
	if e := in.require("RoleName"); e != nil {
		return nil, e
	}
	r := s.roles[in.get("RoleName")]
	if r == nil {
		return nil, errorf("NoSuchEntity", "The role with name %s cannot be found.", in.get("RoleName"))
	}
	return r, nil
}

func (s *Server) getRole(in q) (*reply, *apiError) {
	r, e := s.roleNamed(in)
	if e != nil {
		return nil, e
	}
	return answer().add("Role", r), nil
}

func (s *Server) createRole(in q) (*reply, *apiError) {
	if e := in.require("RoleName", "AssumeRolePolicyDocument"); e != nil {
		return nil, e
	}
	name := in.get("RoleName")
	if s.roles[name] != nil {
		return nil, errorf("EntityAlreadyExists", "Role with name %s already exists.", name)
	}
	if !json.Valid([]byte(in.get("AssumeRolePolicyDocument"))) {
		return nil, errorf("MalformedPolicyDocument", "This policy contains invalid Json")
	}
	r := &role{Name: name, ID: s.id("AROA"), Arn: "arn:aws:iam::123456789012:role/" + name, Path: "/", Created: "2026-01-01T00:00:00Z",
		Trust: url.QueryEscape(in.get("AssumeRolePolicyDocument")), Tags: iamTags(in), Policies: map[string]string{}}
	s.roles[name] = r
	return answer().add("Role", r), nil
}

func (s *Server) deleteRole(in q) (*reply, *apiError) {
	r, e := s.roleNamed(in)
	if e != nil {
		return nil, e
	}
	if len(r.Policies) > 0 {
		return nil, errorf("DeleteConflict", "Cannot delete entity, must delete policies first.")
	}
	for _, p := range s.profiles {
		if slices.Contains(p.Roles, r) {
			return nil, errorf("DeleteConflict", "Cannot delete entity, must remove roles from instance profile first.")
		}
	}
	delete(s.roles, r.Name)
	return answer(), nil
}

func (s *Server) getRolePolicy(in q) (*reply, *apiError) {
	r, e := s.roleNamed(in)
	if e != nil {
		return nil, e
	}
	doc, ok := r.Policies[in.get("PolicyName")]
	if !ok {
		return nil, errorf("NoSuchEntity", "The role policy with name %s cannot be found.", in.get("PolicyName"))
	}
	// IAM answers policy documents URL-encoded.
	return answer().add("RoleName", r.Name).add("PolicyName", in.get("PolicyName")).add("PolicyDocument", url.QueryEscape(doc)), nil
}

func (s *Server) putRolePolicy(in q) (*reply, *apiError) {
	if e := in.require("RoleName", "PolicyName", "PolicyDocument"); e != nil {
		return nil, e
	}
	r, e := s.roleNamed(in)
	if e != nil {
		return nil, e
	}
	if !json.Valid([]byte(in.get("PolicyDocument"))) {
		return nil, errorf("MalformedPolicyDocument", "This policy contains invalid Json")
	}
	r.Policies[in.get("PolicyName")] = in.get("PolicyDocument")
	return answer(), nil
}

func (s *Server) deleteRolePolicy(in q) (*reply, *apiError) {
	r, e := s.roleNamed(in)
	if e != nil {
		return nil, e
	}
	if _, ok := r.Policies[in.get("PolicyName")]; !ok {
		return nil, errorf("NoSuchEntity", "The role policy with name %s cannot be found.", in.get("PolicyName"))
	}
	delete(r.Policies, in.get("PolicyName"))
	return answer(), nil
}

func (s *Server) profileNamed(in q) (*profile, *apiError) {
	if e := in.require("InstanceProfileName"); e != nil {
		return nil, e
	}
	p := s.profiles[in.get("InstanceProfileName")]
	if p == nil {
		return nil, errorf("NoSuchEntity", "Instance Profile %s cannot be found.", in.get("InstanceProfileName"))
	}
	return p, nil
}

func (s *Server) profileARN(arn string) bool {
	for _, p := range s.profiles {
		if p.Arn == arn {
			return true
		}
	}
	return false
}

func (s *Server) getProfile(in q) (*reply, *apiError) {
	p, e := s.profileNamed(in)
	if e != nil {
		return nil, e
	}
	return answer().add("InstanceProfile", p), nil
}

func (s *Server) createProfile(in q) (*reply, *apiError) {
	if e := in.require("InstanceProfileName"); e != nil {
		return nil, e
	}
	name := in.get("InstanceProfileName")
	if s.profiles[name] != nil {
		return nil, errorf("EntityAlreadyExists", "Instance Profile %s already exists.", name)
	}
	p := &profile{Name: name, ID: s.id("AIPA"), Arn: "arn:aws:iam::123456789012:instance-profile/" + name, Path: "/",
		Created: "2026-01-01T00:00:00Z", Tags: iamTags(in)}
	s.profiles[name] = p
	return answer().add("InstanceProfile", p), nil
}

func (s *Server) deleteProfile(in q) (*reply, *apiError) {
	p, e := s.profileNamed(in)
	if e != nil {
		return nil, e
	}
	if len(p.Roles) > 0 {
		return nil, errorf("DeleteConflict", "Cannot delete entity, must remove roles from instance profile first.")
	}
	delete(s.profiles, p.Name)
	return answer(), nil
}

func (s *Server) addRole(in q) (*reply, *apiError) {
	p, e := s.profileNamed(in)
	if e != nil {
		return nil, e
	}
	r, e := s.roleNamed(in)
	if e != nil {
		return nil, e
	}
	if len(p.Roles) > 0 {
		return nil, errorf("LimitExceeded", "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
	}
	p.Roles = []*role{r}
	return answer(), nil
}

func (s *Server) removeRole(in q) (*reply, *apiError) {
	p, e := s.profileNamed(in)
	if e != nil {
		return nil, e
	}
	r, e := s.roleNamed(in)
	if e != nil {
		return nil, e
	}
	if !slices.Contains(p.Roles, r) {
		return nil, errorf("NoSuchEntity", "The role %s is not in instance profile %s.", r.Name, p.Name)
	}
	p.Roles = slices.DeleteFunc(p.Roles, func(x *role) bool { return x == r })
	return answer(), nil
}
