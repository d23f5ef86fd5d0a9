package awstest

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Account is the stand-in's AWS account: the owner of everything it creates, and what "self"
// means where EC2 takes an owner.
const Account = "123456789012"

// ownerAliases are the owners EC2 names by alias, with the account that owns their images
// (those of Amazon's own images and of the AWS Marketplace's).
var ownerAliases = map[string]string{"amazon": "137112412989", "aws-marketplace": "679593333241"}

// Image is an AMI as a test says an account has it (as Packer would have registered it).
type Image struct {
	// ID is ami- and 8 or 17 hex digits, as EC2's; "" gives the image a new one.
	ID   string
	Name string
	// Created is when the image was registered; zero means now.
	Created time.Time
	// Owner is who owns the image: "self" or "" (the stand-in's Account), another account's id
	// (an image shared with this account), or "amazon" or "aws-marketplace".
	Owner string
	// State is "available" if empty (or pending, failed, ...); Architecture "x86_64" if empty.
	State, Architecture string
	// Public images answer isPublic true; which images an account may see is not modelled:
	// DescribeImages answers with every image a test added.
	Public bool
	Tags   map[string]string
}

type image struct {
	ID             string `xml:"imageId"`
	Location       string `xml:"imageLocation"`
	State          string `xml:"imageState"`
	Owner          string `xml:"imageOwnerId"`
	Created        string `xml:"creationDate"`
	Public         bool   `xml:"isPublic"`
	Architecture   string `xml:"architecture"`
	Type           string `xml:"imageType"`
	Alias          string `xml:"imageOwnerAlias,omitempty"`
	Name           string `xml:"name"`
	RootDeviceType string `xml:"rootDeviceType"`
	RootDeviceName string `xml:"rootDeviceName"`
	Virtualization string `xml:"virtualizationType"`
	Hypervisor     string `xml:"hypervisor"`
	EnaSupport     bool   `xml:"enaSupport"`
	TagSet         []xTag `xml:"tagSet>item"`
}

var amiPattern = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)

// AddImage gives the account an AMI that DescribeImages then answers with, and returns its
// id. It panics if the id is not an AMI id or is taken, or the owner is neither "self", an
// account id nor an alias EC2 knows.
func (s *Server) AddImage(img Image) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if img.ID == "" {
		img.ID = s.id("ami")
	}
	if !amiPattern.MatchString(img.ID) {
		panic(fmt.Sprintf("awstest: AddImage: %q is not an AMI id (ami- and 8 or 17 hex digits)", img.ID))
	}
	if s.images[img.ID] != nil {
		panic(fmt.Sprintf("awstest: AddImage: image %s exists", img.ID))
	}
	im := &image{ID: img.ID, Name: img.Name, State: cmp.Or(img.State, "available"), Public: img.Public,
		Architecture: cmp.Or(img.Architecture, "x86_64"), Type: "machine", RootDeviceType: "ebs",
		RootDeviceName: "/dev/xvda", Virtualization: "hvm", Hypervisor: "xen", EnaSupport: true}
	switch owner := img.Owner; {
	case owner == "" || owner == "self":
		im.Owner = Account
	case ownerAliases[owner] != "":
		im.Owner, im.Alias = ownerAliases[owner], owner
	case accountPattern.MatchString(owner):
		im.Owner = owner
	default:
		panic(fmt.Sprintf("awstest: AddImage: owner %q is neither self, an account id nor amazon or aws-marketplace", owner))
	}
	// EC2's imageLocation: the owner (its alias if it has one) and the name.
	im.Location = cmp.Or(im.Alias, im.Owner) + "/" + im.Name
	created := img.Created
	if created.IsZero() {
		created = time.Now()
	}
	im.Created = created.UTC().Format("2006-01-02T15:04:05.000Z")
	for _, k := range slices.Sorted(maps.Keys(img.Tags)) {
		im.TagSet = append(im.TagSet, xTag{k, img.Tags[k]})
	}
	s.images[im.ID] = im
	return im.ID
}

var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)

// ownedBy says whether owner, as DescribeImages' Owner.N names one, owns the image.
func (im *image) ownedBy(owner string) bool {
	return owner == "self" && im.Owner == Account || owner == im.Owner || im.Alias != "" && owner == im.Alias
}

// describeImages answers with the images AddImage added: those ImageId.N names (all if none),
// of the owners Owner.N names (any if none), that pass the filters, one page of them.
func (s *Server) describeImages(in q) (*reply, *apiError) {
	if in.has("ExecutableBy") {
		return nil, errorf("InvalidParameterValue", "the stand-in does not model launch permissions: ExecutableBy is not supported")
	}
	owners := in.strings("Owner")
	for _, o := range owners {
		if o != "self" && o != "aws-backup-vault" && ownerAliases[o] == "" && !accountPattern.MatchString(o) {
			return nil, errorf("InvalidUserID.Malformed", "User ID '%s' is invalid", o)
		}
	}
	ids := in.strings("ImageId")
	var missing []string
	for _, id := range ids {
		if !amiPattern.MatchString(id) {
			return nil, errorf("InvalidAMIID.Malformed", `Invalid id: "%s" (expecting "ami-...")`, id)
		}
		if s.images[id] == nil {
			missing = append(missing, id)
		}
	}
	switch {
	case len(missing) == 1:
		return nil, errorf("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", missing[0])
	case len(missing) > 1:
		return nil, errorf("InvalidAMIID.NotFound", "The image ids '[%s]' do not exist", strings.Join(missing, ", "))
	}
	// An image another owner's than Owner.N names is left out, also when ImageId.N names it.
	chosen := map[string]*image{}
	for id, im := range s.images {
		if (len(ids) == 0 || slices.Contains(ids, id)) && (len(owners) == 0 || slices.ContainsFunc(owners, im.ownedBy)) {
			chosen[id] = im
		}
	}
	return describe(s, in, chosen, "", "", "imagesSet", func(v *image) []xTag { return v.TagSet },
		func(v *image, f string) ([]string, bool) {
			switch f {
			case "image-id":
				return []string{v.ID}, true
			case "name":
				return []string{v.Name}, true
			case "state":
				return []string{v.State}, true
			case "architecture":
				return []string{v.Architecture}, true
			case "owner-id":
				return []string{v.Owner}, true
			case "owner-alias":
				return []string{v.Alias}, true
			case "creation-date":
				return []string{v.Created}, true
			case "is-public":
				return []string{fmt.Sprint(v.Public)}, true
			case "image-type":
				return []string{v.Type}, true
			case "root-device-type":
				return []string{v.RootDeviceType}, true
			case "root-device-name":
				return []string{v.RootDeviceName}, true
			case "virtualization-type":
				return []string{v.Virtualization}, true
			case "hypervisor":
				return []string{v.Hypervisor}, true
			}
			return nil, false
		})
}

// wildcard says whether s matches an EC2 filter value: * matches any run of characters, ?
// exactly one, and a backslash makes the character after it literal (\*, \?, \\).
func wildcard(pattern, s string) bool {
	type token struct {
		r    rune
		kind byte // 0: the literal r; '*' or '?'
	}
	var p []token
	rs := []rune(pattern)
	for i := 0; i < len(rs); i++ {
		switch {
		case rs[i] == '\\' && i+1 < len(rs):
			i++
			p = append(p, token{rs[i], 0})
		case rs[i] == '*' || rs[i] == '?':
			p = append(p, token{kind: byte(rs[i])})
		default:
			p = append(p, token{rs[i], 0})
		}
	}
	t := []rune(s)
	// Backtracking to the last *: linear for patterns with one *, at worst len(p)*len(t).
	pi, ti, star, mark := 0, 0, -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi].kind == '?' || p[pi].kind == 0 && p[pi].r == t[ti]):
			pi, ti = pi+1, ti+1
		case pi < len(p) && p[pi].kind == '*':
			star, mark = pi, ti
			pi++
		case star >= 0:
			mark++
			pi, ti = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi].kind == '*' {
		pi++
	}
	return pi == len(p)
}
