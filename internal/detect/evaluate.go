package detect

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/eks-unauthorized-access/detector/internal/audit"
)

// DecisionAnnotation is the annotation in which the API server's authorizer records its
// decision ("allow" or "forbid").
const DecisionAnnotation = "authorization.k8s.io/decision"

// ParseMode parses a match mode name (case-insensitive; "" is ModeSeed).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeSeed, nil
	case ModeSeed, ModeAuthz, ModeBroad:
		return m, nil
	}
	return "", fmt.Errorf("unknown match mode %q (want seed, authz or broad)", s)
}

// Evaluate applies the rule's search clause and fillnull to one audit event.
// logTimestamp is the CloudWatch log event time (zero for raw lines); it is the event
// time when requestReceivedTimestamp is missing or unreadable.
//
// The search clause `verb=create responseStatus.reason=Forbidden` compares the decoded
// values case-insensitively, as SPL's search does, so "CREATE" and "\u0046orbidden" match.
// An unknown mode behaves as ModeSeed: a typo must not silently disable detection.
func Evaluate(e audit.Event, logTimestamp time.Time, mode Mode) (Match, bool) {
	if !matches(e, mode) {
		return Match{}, false
	}
	return Match{
		Fields:   fieldsOf(e),
		Time:     eventTime(e, logTimestamp),
		Decision: e.Annotations[DecisionAnnotation],
		Identity: e.User.Extra,
		AuditID:  e.AuditID,
	}, true
}

func matches(e audit.Event, mode Mode) bool {
	create := e.Has(audit.FieldVerb) && strings.EqualFold(e.Verb, "create")
	if !create {
		return false
	}
	forbidden := e.Has(audit.FieldStatusReason) && strings.EqualFold(e.ResponseStatus.Reason, "Forbidden")
	switch mode {
	case ModeAuthz:
		return forbidden && strings.EqualFold(e.Annotations[DecisionAnnotation], "forbid")
	case ModeBroad:
		if forbidden {
			return true
		}
		// Pipelines that reshape audit events sometimes drop reason: keep the 403s that
		// carry none (an empty reason counts as none).
		reasonless := !e.Has(audit.FieldStatusReason) || e.ResponseStatus.Reason == ""
		return reasonless && e.Has(audit.FieldStatusCode) && is403(e.ResponseStatus.Code)
	default:
		return forbidden
	}
}

// is403 reports whether a code, as written in the JSON, is the number 403 (403, 403.0, 4.03e2).
func is403(code string) bool {
	f, err := strconv.ParseFloat(strings.TrimSpace(code), 64)
	return err == nil && f == 403
}

// fieldsOf is fillnull plus rename: every by-field, FillValue where missing.
func fieldsOf(e audit.Event) Fields {
	var ref audit.ObjectReference
	if e.ObjectRef != nil {
		ref = *e.ObjectRef
	}
	var st audit.Status
	if e.ResponseStatus != nil {
		st = *e.ResponseStatus
	}
	fill := func(f audit.Field, v string) string {
		if !e.Has(f) {
			return FillValue
		}
		return v
	}
	fillList := func(f audit.Field, v []string) []string {
		if !e.Has(f) {
			return []string{FillValue}
		}
		return append([]string(nil), v...)
	}
	return Fields{
		Namespace:                fill(audit.FieldNamespace, ref.Namespace),
		Resource:                 fill(audit.FieldResource, ref.Resource),
		RequestReceivedTimestamp: fill(audit.FieldRequestReceivedTimestamp, e.RequestReceivedTimestamp),
		RequestURI:               fill(audit.FieldRequestURI, e.RequestURI),
		Code:                     fill(audit.FieldStatusCode, st.Code),
		Message:                  fill(audit.FieldStatusMessage, st.Message),
		SrcIPs:                   fillList(audit.FieldSourceIPs, e.SourceIPs),
		Stage:                    fill(audit.FieldStage, string(e.Stage)),
		Groups:                   fillList(audit.FieldGroups, e.User.Groups),
		UID:                      fill(audit.FieldUID, e.User.UID),
		User:                     fill(audit.FieldUsername, e.User.Username),
		UserAgent:                fill(audit.FieldUserAgent, e.UserAgent),
		Verb:                     fill(audit.FieldVerb, e.Verb),
	}
}

// timeLayouts are the timestamp forms seen in audit logs: RFC 3339 (the API server) and
// the space-separated form of some log exports.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"}

// eventTime is requestReceivedTimestamp, else the log event time, else (raw lines only)
// stageTimestamp; the zero time when none is readable.
func eventTime(e audit.Event, logTimestamp time.Time) time.Time {
	if t, ok := parseTime(e.RequestReceivedTimestamp); ok {
		return t
	}
	if !logTimestamp.IsZero() {
		return logTimestamp.UTC()
	}
	t, _ := parseTime(e.StageTimestamp)
	return t
}

func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
