package awstest

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Instance refreshes and lifecycle hooks: how an Auto Scaling group's instances are replaced
// by ones of a new launch template version, each old one held in Terminating:Wait until the
// caller (having drained it) completes its lifecycle action.

const (
	hookTerminating = "autoscaling:EC2_INSTANCE_TERMINATING"
	hookLaunching   = "autoscaling:EC2_INSTANCE_LAUNCHING"
	terminatingWait = "Terminating:Wait"
)

type lifecycleHook struct {
	Name       string `xml:"LifecycleHookName"`
	Group      string `xml:"AutoScalingGroupName"`
	Transition string `xml:"LifecycleTransition"`
	Heartbeat  int    `xml:"HeartbeatTimeout"`
	Global     int    `xml:"GlobalTimeout"`
	Default    string `xml:"DefaultResult"`
}

type refreshPrefs struct {
	MinHealthy   int  `xml:"MinHealthyPercentage"`
	MaxHealthy   *int `xml:"MaxHealthyPercentage,omitempty"`
	Warmup       *int `xml:"InstanceWarmup,omitempty"`
	SkipMatching bool `xml:"SkipMatching"`
	AutoRollback bool `xml:"AutoRollback"`
}

type desiredConfig struct {
	LaunchTemplate asgTemplate `xml:"LaunchTemplate"`
}

// refresh is one instance refresh, as DescribeInstanceRefreshes lists it, and its plan.
type refresh struct {
	ID       string         `xml:"InstanceRefreshId"`
	Group    string         `xml:"AutoScalingGroupName"`
	Status   string         `xml:"Status"`
	Reason   string         `xml:"StatusReason,omitempty"`
	Start    string         `xml:"StartTime"`
	End      string         `xml:"EndTime,omitempty"`
	Percent  int            `xml:"PercentageComplete"`
	ToUpdate int            `xml:"InstancesToUpdate"`
	Prefs    refreshPrefs   `xml:"Preferences"`
	Desired  *desiredConfig `xml:"DesiredConfiguration,omitempty"`

	started time.Time
	// template and version are what the replacements are launched from.
	template *launchTemplate
	version  int
	// old are the instances to replace, in order; next is how many of them are taken down.
	old  []string
	next int
	// fresh are the replacements launched and not yet in service; launchedFirst the old
	// instances to take down once they serve (MaxHealthyPercentage given).
	fresh, launchedFirst []string
}

func (r *refresh) active() bool {
	return r.Status == "Pending" || r.Status == "InProgress" || r.Status == "Cancelling"
}

func (s *Server) refreshHandlers() map[string]func(q) (*reply, *apiError) {
	return map[string]func(q) (*reply, *apiError){
		"StartInstanceRefresh": s.startRefresh, "DescribeInstanceRefreshes": s.describeRefreshes, "CancelInstanceRefresh": s.cancelRefresh,
		"PutLifecycleHook": s.putHook, "DescribeLifecycleHooks": s.describeHooks, "CompleteLifecycleAction": s.completeAction,
	}
}

// groupIn is the group a call names in AutoScalingGroupName, once the call's other required
// parameters are there too.
func (s *Server) groupIn(in q, required ...string) (*asGroup, *apiError) {
	if e := in.require(append([]string{"AutoScalingGroupName"}, required...)...); e != nil {
		return nil, e
	}
	name := in.get("AutoScalingGroupName")
	g := s.asgs[name]
	if g == nil || g.Status != "" {
		return nil, errorf("ValidationError", "AutoScalingGroup name not found - AutoScalingGroup '%s' not found", name)
	}
	return g, nil
}

func (s *Server) startRefresh(in q) (*reply, *apiError) {
	g, e := s.groupIn(in)
	if e != nil {
		return nil, e
	}
	for _, r := range s.refreshes {
		if r.Group == g.Name && r.active() {
			return nil, errorf("InstanceRefreshInProgress", "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.")
		}
	}
	switch st := in.get("Strategy"); st {
	case "", "Rolling":
	case "ReplaceRootVolume":
		return nil, errorf("InvalidAction", "the stand-in does not implement the ReplaceRootVolume strategy")
	default:
		return nil, errorf("ValidationError", "1 validation error detected: Value '%s' at 'strategy' failed to satisfy constraint: Member must satisfy enum value set: [Rolling, ReplaceRootVolume]", st)
	}
	r := &refresh{ID: s.id("uuid"), Group: g.Name, Status: "Pending", started: time.Now(), Start: time.Now().UTC().Format(time.RFC3339)}
	r.Prefs.MinHealthy = 90
	num := func(name string, lo, hi int) (*int, *apiError) {
		v := in.get("Preferences." + name)
		if v == "" {
			return nil, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return nil, errorf("ValidationError", "1 validation error detected: Value '%s' at 'preferences.%s' failed to satisfy constraint: Member must have value between %d and %d", v, lowerFirst(name), lo, hi)
		}
		return &n, nil
	}
	minH, e := num("MinHealthyPercentage", 0, 100)
	if e != nil {
		return nil, e
	}
	if minH != nil {
		r.Prefs.MinHealthy = *minH
	}
	if r.Prefs.MaxHealthy, e = num("MaxHealthyPercentage", 100, 200); e != nil {
		return nil, e
	}
	if r.Prefs.Warmup, e = num("InstanceWarmup", 0, math.MaxInt32); e != nil {
		return nil, e
	}
	if mx := r.Prefs.MaxHealthy; mx != nil {
		if minH == nil {
			return nil, errorf("ValidationError", "You must specify MinHealthyPercentage when you specify MaxHealthyPercentage.")
		}
		if *mx-*minH > 100 {
			return nil, errorf("ValidationError", "The difference between MaxHealthyPercentage and MinHealthyPercentage cannot be greater than 100.")
		}
	}
	for _, p := range []string{"CheckpointPercentages", "CheckpointDelay", "BakeTime", "AlarmSpecification", "ScaleInProtectedInstances", "StandbyInstances"} {
		if in.has("Preferences." + p) {
			return nil, errorf("InvalidAction", "the stand-in does not implement the instance refresh preference %s", p)
		}
	}
	r.Prefs.SkipMatching = in.get("Preferences.SkipMatching") == "true"
	r.Prefs.AutoRollback = in.get("Preferences.AutoRollback") == "true"

	r.template, r.version = s.templates[g.LaunchTemplate.ID], 0
	version := g.LaunchTemplate.Version
	if in.has("DesiredConfiguration.LaunchTemplate") {
		sub := q{}
		for k, v := range in {
			if rest, ok := strings.CutPrefix(k, "DesiredConfiguration."); ok {
				sub[rest] = v
			}
		}
		lt, e := s.groupTemplate(sub)
		if e != nil {
			return nil, e
		}
		version = cmp.Or(sub.get("LaunchTemplate.Version"), "$Default")
		r.template = lt
		r.Desired = &desiredConfig{asgTemplate{lt.ID, lt.Name, version}}
	} else if in.has("DesiredConfiguration") {
		return nil, errorf("InvalidAction", "the stand-in knows only a desired configuration's LaunchTemplate")
	}
	n, ok := r.template.resolve(version)
	if !ok {
		return nil, errorf("ValidationError", "The specified launch template version %s, of template ID %s, does not exist.", version, r.template.ID)
	}
	r.version = n
	if r.Prefs.AutoRollback && (r.Desired == nil || version == "$Latest" || version == "$Default") {
		return nil, errorf("ValidationError", "An instance refresh with auto rollback needs a desired configuration with a launch template version number, not $Latest or $Default.")
	}
	s.refreshes = append(s.refreshes, r)
	return answer().add("InstanceRefreshId", r.ID), nil
}

// step moves refresh r on by one step, as a Describe call sees it (as instances move on one
// state per DescribeInstances): Pending starts; each later step waits for the replacements
// launched to be in service and for the instances taken down to leave Terminating:Wait, and
// then takes down (and launches) the next batch, until every old instance is replaced.
func (s *Server) step(r *refresh) {
	g := s.asgs[r.Group]
	now := time.Now()
	switch r.Status {
	case "Cancelling":
		r.Status, r.Reason, r.End = "Cancelled", "Cancelled by the caller.", now.UTC().Format(time.RFC3339)
		return
	case "Pending":
		r.Status = "InProgress"
		for _, m := range s.groupMembers(g) {
			i := s.instances[m.ID]
			if i.lifecycle != "" || i.State.Name == "shutting-down" || r.Prefs.SkipMatching && i.lt == r.template.ID && i.ltVersion == r.version {
				continue
			}
			r.old = append(r.old, i.ID)
		}
		r.ToUpdate = len(r.old)
		return
	case "InProgress":
	default:
		return
	}
	taken := r.old[:r.next]
	// A hook's wait that ran out ends as its default result: either way the instance goes.
	for _, id := range taken {
		if i := s.instances[id]; i.lifecycle == terminatingWait && now.After(i.waitUntil) {
			s.endWait(i)
		}
	}
	done := 0
	for _, id := range taken {
		if st := s.instances[id].State.Name; st == "shutting-down" || st == "terminated" {
			done++
		}
	}
	if r.ToUpdate > 0 {
		r.Percent = 100 * done / r.ToUpdate
	}
	serving := true
	for _, id := range r.fresh {
		if i := s.instances[id]; i.State.Name == "pending" {
			i.State = instanceState{16, "running"} // Auto Scaling's own check sees it in service
			serving = false
		}
	}
	if !serving {
		return
	}
	r.fresh = nil
	// Launched first: the old instances go once their replacements serve.
	if len(r.launchedFirst) > 0 {
		for _, id := range r.launchedFirst {
			s.takeDown(g, s.instances[id])
		}
		r.launchedFirst = nil
		return
	}
	for _, id := range taken {
		if s.instances[id].lifecycle == terminatingWait {
			return
		}
	}
	if r.next == len(r.old) {
		r.Status, r.Percent, r.End = "Successful", 100, now.UTC().Format(time.RFC3339)
		if r.Desired != nil {
			g.LaunchTemplate = r.Desired.LaunchTemplate
		}
		return
	}
	// The batch: as many as the healthy percentages allow, at least one. With a maximum, the
	// replacements are launched first and the old instances taken down once they serve (one
	// at a time beyond the desired capacity when the percentages leave no room); without one,
	// both at once.
	batch := g.Desired - int(math.Ceil(float64(g.Desired*r.Prefs.MinHealthy)/100))
	if mx := r.Prefs.MaxHealthy; mx != nil {
		batch = g.Desired*(*mx)/100 - g.Desired
	}
	batch = min(max(batch, 1), len(r.old)-r.next)
	for range batch {
		i := s.instances[r.old[r.next]]
		r.next++
		fresh, e := s.launch(g, r.template, r.version, s.subnets[i.SubnetID])
		if e != nil {
			r.Status, r.Reason, r.End = "Failed", "Failed to launch a replacement: "+e.Message, now.UTC().Format(time.RFC3339)
			return
		}
		r.fresh = append(r.fresh, fresh.ID)
		if r.Prefs.MaxHealthy == nil {
			s.takeDown(g, i)
		} else {
			r.launchedFirst = append(r.launchedFirst, i.ID)
		}
	}
}

// takeDown starts terminating a group's instance: into Terminating:Wait if the group has a
// terminating lifecycle hook, else shutting down.
func (s *Server) takeDown(g *asGroup, i *instance) {
	for _, n := range slices.Sorted(maps.Keys(g.hooks)) {
		if h := g.hooks[n]; h.Transition == hookTerminating {
			i.lifecycle, i.hook, i.waitUntil = terminatingWait, h.Name, time.Now().Add(time.Duration(h.Heartbeat)*time.Second)
			return
		}
	}
	i.State = instanceState{32, "shutting-down"}
}

// endWait lets an instance in Terminating:Wait go on: it shuts down.
func (s *Server) endWait(i *instance) {
	i.lifecycle, i.hook = "", ""
	i.State = instanceState{32, "shutting-down"}
}

func (s *Server) describeRefreshes(in q) (*reply, *apiError) {
	if e := in.require("AutoScalingGroupName"); e != nil {
		return nil, e
	}
	name := in.get("AutoScalingGroupName")
	ids := in.strings("InstanceRefreshIds.member")
	var list []*refresh
	var keys []string
	// Newest first, as Auto Scaling lists them; keys sort the same way.
	for n := len(s.refreshes) - 1; n >= 0; n-- {
		r := s.refreshes[n]
		if r.Group != name || len(ids) > 0 && !slices.Contains(ids, r.ID) {
			continue
		}
		s.step(r)
		list, keys = append(list, r), append(keys, fmt.Sprintf("%08d", len(s.refreshes)-n))
	}
	pg, next, e := page(s, in, list, keys)
	if e != nil {
		return nil, e
	}
	rep := answer().add("InstanceRefreshes", members[*refresh]{pg})
	if next != "" {
		rep.add("NextToken", next)
	}
	return rep, nil
}

func (s *Server) cancelRefresh(in q) (*reply, *apiError) {
	g, e := s.groupIn(in)
	if e != nil {
		return nil, e
	}
	for _, r := range s.refreshes {
		if r.Group == g.Name && (r.Status == "Pending" || r.Status == "InProgress") {
			r.Status = "Cancelling"
			return answer().add("InstanceRefreshId", r.ID), nil
		}
	}
	return nil, errorf("ActiveInstanceRefreshNotFound", "No in progress or pending Instance Refresh found for Auto Scaling group %s", g.Name)
}

func (s *Server) putHook(in q) (*reply, *apiError) {
	g, e := s.groupIn(in, "LifecycleHookName")
	if e != nil {
		return nil, e
	}
	name := in.get("LifecycleHookName")
	h := g.hooks[name]
	if h == nil {
		if !in.has("LifecycleTransition") {
			return nil, errorf("ValidationError", "Lifecycle transition must be specified when creating a lifecycle hook.")
		}
		h = &lifecycleHook{Name: name, Group: g.Name, Heartbeat: 3600, Default: "ABANDON"}
	}
	h2 := *h
	if t := in.get("LifecycleTransition"); t != "" {
		switch t {
		case hookTerminating:
		case hookLaunching:
			return nil, errorf("InvalidAction", "the stand-in does not implement launching lifecycle hooks")
		default:
			return nil, errorf("ValidationError", "Invalid Lifecycle Transition: %s", t)
		}
		h2.Transition = t
	}
	if v := in.get("HeartbeatTimeout"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 30 || n > 7200 {
			return nil, errorf("ValidationError", "Heartbeat timeout must be between 30 and 7200 seconds.")
		}
		h2.Heartbeat = n
	}
	if v := in.get("DefaultResult"); v != "" {
		if v != "CONTINUE" && v != "ABANDON" {
			return nil, errorf("ValidationError", "Invalid default result: %s. Valid values are CONTINUE and ABANDON.", v)
		}
		h2.Default = v
	}
	if in.has("NotificationTargetARN") || in.has("RoleARN") || in.has("NotificationMetadata") {
		return nil, errorf("InvalidAction", "the stand-in does not implement lifecycle hook notifications")
	}
	h2.Global = min(100*h2.Heartbeat, 172800)
	if g.hooks == nil {
		g.hooks = map[string]*lifecycleHook{}
	}
	g.hooks[name] = &h2
	return answer(), nil
}

func (s *Server) describeHooks(in q) (*reply, *apiError) {
	g, e := s.groupIn(in)
	if e != nil {
		return nil, e
	}
	names := in.strings("LifecycleHookNames.member")
	var list []*lifecycleHook
	for _, n := range slices.Sorted(maps.Keys(g.hooks)) {
		if len(names) == 0 || slices.Contains(names, n) {
			list = append(list, g.hooks[n])
		}
	}
	return answer().add("LifecycleHooks", members[*lifecycleHook]{list}), nil
}

func (s *Server) completeAction(in q) (*reply, *apiError) {
	g, e := s.groupIn(in, "LifecycleHookName", "LifecycleActionResult")
	if e != nil {
		return nil, e
	}
	if res := in.get("LifecycleActionResult"); res != "CONTINUE" && res != "ABANDON" {
		return nil, errorf("ValidationError", "Invalid lifecycle action result: %s. Valid values are CONTINUE and ABANDON.", res)
	}
	id := in.get("InstanceId")
	if id == "" {
		return nil, errorf("InvalidAction", "the stand-in knows lifecycle actions by InstanceId only, not by LifecycleActionToken")
	}
	i := s.instances[id]
	if i == nil || i.group != g.Name || i.lifecycle != terminatingWait || i.hook != in.get("LifecycleHookName") {
		return nil, errorf("ValidationError", "No active Lifecycle Action found with instance ID %s", id)
	}
	// For a terminating hook, CONTINUE and ABANDON both let the instance terminate.
	s.endWait(i)
	return answer(), nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
