package alert

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/eks-unauthorized-access/detector/internal/aggregate"
	"github.com/eks-unauthorized-access/detector/internal/audit"
)

// MaxIdentities caps the identities listed in one alert.
const MaxIdentities = 10

// Identity kinds.
const (
	IdentityIAM            = "iam"            // an AWS identity mapped by the EKS authenticator or an access entry
	IdentityServiceAccount = "serviceaccount" // a bound service-account token
)

// Identity is one identity behind the group's requests, from the identifiers of user.extra:
// the IAM role or user, session and access key that the EKS authenticator verified, or the
// pod and node a service-account token was bound to. Values are cleaned like every other
// value; the links are built here from values of a checked shape, percent-encoded.
type Identity struct {
	Kind string `json:"kind"` // IdentityIAM or IdentityServiceAccount
	// The identifiers (see audit.Identity), each cleaned.
	audit.Identity
	// SessionNameCallerChosen is true whenever SessionName is set: the caller chose it
	// when assuming the role, so it is no proof of a person.
	SessionNameCallerChosen bool `json:"sessionNameCallerChosen,omitempty"`
	// CloudTrailURL opens CloudTrail event history in the alert's region for the access key
	// id, or else for the session name (CloudTrail's user name of an assumed role).
	CloudTrailURL string `json:"cloudTrailUrl,omitempty"`
	// IAMURL opens the IAM role or user of CanonicalARN in the IAM console.
	IAMURL string `json:"iamUrl,omitempty"`
}

// identities lists the distinct identities of the aggregates, in their order (most recent
// first), at most MaxIdentities, and how many more there are.
func identities(aggs []aggregate.Aggregate, region string) ([]Identity, int) {
	out := []Identity{}
	seen := map[audit.Identity]bool{}
	omitted := 0
	for _, ag := range aggs {
		id := ag.Identity
		if id.IsZero() || seen[id] {
			continue
		}
		seen[id] = true
		if len(out) == MaxIdentities {
			omitted++
			continue
		}
		out = append(out, identityOf(id, region))
	}
	return out, omitted
}

// identityOf cleans one identity and adds its console links.
func identityOf(id audit.Identity, region string) Identity {
	kind := IdentityIAM
	if id.PodName != "" || id.PodUID != "" || id.NodeName != "" || id.CredentialID != "" {
		kind = IdentityServiceAccount
	}
	cleaned := audit.Identity{
		ARN: clean(id.ARN, maxName), CanonicalARN: clean(id.CanonicalARN, maxName), SessionName: clean(id.SessionName, maxName),
		AccessKeyID: clean(id.AccessKeyID, maxName), PrincipalID: clean(id.PrincipalID, maxName),
		PodName: clean(id.PodName, maxName), PodUID: clean(id.PodUID, maxName), NodeName: clean(id.NodeName, maxName),
		CredentialID: clean(id.CredentialID, maxName),
	}
	return Identity{
		Kind:                    kind,
		Identity:                cleaned,
		SessionNameCallerChosen: id.SessionName != "",
		CloudTrailURL:           CloudTrailURL(region, id.AccessKeyID, id.SessionName),
		IAMURL:                  IAMURL(id.CanonicalARN),
	}
}

// Shapes of the values placed in console links: what AWS issues. A value of another shape
// gets no link (it is still shown, cleaned).
var (
	accessKeyPattern = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
	// Role session names and IAM user and role names: [\w+=,.@-], up to 64 characters.
	iamNamePattern = regexp.MustCompile(`^[A-Za-z0-9_+=,.@-]{1,64}$`)
	// arn:<partition>:iam::<account>:<role|user>/<path/><name>
	iamARNPattern = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):iam::[0-9]{12}:(role|user)/(?:[!-~]*/)?([A-Za-z0-9_+=,.@-]{1,64})$`)
)

// consoleHost is the AWS console host of a region ("" or not a region name: the global
// console, which opens in the console's current region).
func consoleHost(region string) string {
	if !regionPattern.MatchString(region) {
		return "console.aws.amazon.com"
	}
	switch {
	case strings.HasPrefix(region, "cn-"):
		return region + ".console.amazonaws.cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "console.amazonaws-us-gov.com"
	}
	return region + ".console.aws.amazon.com"
}

// CloudTrailURL is a link to CloudTrail event history in region, filtered on the access key
// id, or when there is none on the user name (for an assumed role, CloudTrail's user name is
// the session name). It is "" when neither has the shape AWS gives it.
func CloudTrailURL(region, accessKeyID, sessionName string) string {
	var filter string
	switch {
	case accessKeyPattern.MatchString(accessKeyID):
		filter = "AccessKeyId=" + url.QueryEscape(accessKeyID)
	case iamNamePattern.MatchString(sessionName):
		filter = "Username=" + url.QueryEscape(sessionName)
	default:
		return ""
	}
	base := "https://" + consoleHost(region) + "/cloudtrailv2/home"
	if regionPattern.MatchString(region) {
		base += "?region=" + region
	}
	return base + "#/events?" + filter
}

// IAMURL is a link to the IAM role or user named by a canonical ARN in the IAM console of
// its partition, or "" when the ARN is not an IAM role or user ARN.
func IAMURL(canonicalARN string) string {
	m := iamARNPattern.FindStringSubmatch(canonicalARN)
	if m == nil {
		return ""
	}
	host := map[string]string{"aws": "console.aws.amazon.com", "aws-cn": "console.amazonaws.cn", "aws-us-gov": "console.amazonaws-us-gov.com"}[m[1]]
	return "https://" + host + "/iam/home#/" + m[2] + "s/details/" + url.PathEscape(m[3])
}
