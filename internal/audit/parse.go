package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// truncatedSuffix ends a log event that CloudWatch Logs cut at its size limit.
var truncatedSuffix = []byte("[Truncated...]")

// Parse parses one log line as an audit event. The error wraps ErrTruncated for a line
// cut by CloudWatch Logs, ErrNotJSON for a line that is not JSON, and ErrNotAudit for JSON
// that is not an audit event or holds a field of the wrong JSON type.
//
// A line is an audit event when its apiVersion is audit.k8s.io/*; when apiVersion is
// missing (events written before v1, and reshaped exports), when kind is "Event" and verb or
// stage is present, or, without kind either, when verb and one of user or stage are present.
// Any other apiVersion (a core v1 Event, for instance) or kind is not an audit event.
func Parse(line []byte) (Event, error) {
	line = bytes.TrimSpace(line)
	if bytes.HasSuffix(line, truncatedSuffix) {
		return Event{}, fmt.Errorf("parse audit line: %w", ErrTruncated)
	}
	var e Event
	if err := e.UnmarshalJSON(line); err != nil {
		return Event{}, fmt.Errorf("parse audit line: %w", err)
	}
	if !e.isAudit() {
		return Event{}, fmt.Errorf("parse audit line: %w", ErrNotAudit)
	}
	return e, nil
}

func (e *Event) isAudit() bool {
	switch {
	case e.APIVersion != "":
		return strings.HasPrefix(e.APIVersion, "audit.k8s.io/")
	case e.Kind != "":
		return e.Kind == "Event" && (e.Has(FieldVerb) || e.Has(FieldStage))
	default:
		return e.Has(FieldVerb) && (e.Has(FieldStage) || e.hasUser)
	}
}

// UnmarshalJSON decodes an audit event, matching keys exactly (encoding/json would match
// "VERB" to verb) and recording present fields. Bodies are skipped, never stored. The error
// wraps ErrNotJSON or ErrNotAudit; it does not check that the JSON is an audit event (Parse
// does).
func (e *Event) UnmarshalJSON(b []byte) error {
	var top object
	if err := json.Unmarshal(b, &top); err != nil {
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) || !json.Valid(b) {
			return fmt.Errorf("%w: %w", ErrNotJSON, err)
		}
		return fmt.Errorf("%w: not a JSON object", ErrNotAudit)
	}
	*e = Event{}
	d := decoder{}
	d.str(top, "kind", &e.Kind, 0)
	d.str(top, "apiVersion", &e.APIVersion, 0)
	d.str(top, "level", &e.Level, 0)
	d.str(top, "auditID", &e.AuditID, 0)
	var stage string
	e.Present |= d.str(top, "stage", &stage, FieldStage)
	e.Stage = Stage(stage)
	e.Present |= d.str(top, "requestURI", &e.RequestURI, FieldRequestURI)
	e.Present |= d.str(top, "verb", &e.Verb, FieldVerb)
	e.Present |= d.list(top, "sourceIPs", &e.SourceIPs, FieldSourceIPs)
	e.Present |= d.str(top, "userAgent", &e.UserAgent, FieldUserAgent)
	e.Present |= d.str(top, "requestReceivedTimestamp", &e.RequestReceivedTimestamp, FieldRequestReceivedTimestamp)
	e.Present |= d.str(top, "stageTimestamp", &e.StageTimestamp, FieldStageTimestamp)
	if user, ok := d.obj(top, "user"); ok {
		e.hasUser = true
		e.Present |= d.str(user, "username", &e.User.Username, FieldUsername)
		e.Present |= d.str(user, "uid", &e.User.UID, FieldUID)
		e.Present |= d.list(user, "groups", &e.User.Groups, FieldGroups)
	}
	if ref, ok := d.obj(top, "objectRef"); ok {
		r := &ObjectReference{}
		e.Present |= d.str(ref, "resource", &r.Resource, FieldResource)
		e.Present |= d.str(ref, "namespace", &r.Namespace, FieldNamespace)
		d.str(ref, "name", &r.Name, 0)
		d.str(ref, "apiGroup", &r.APIGroup, 0)
		d.str(ref, "apiVersion", &r.APIVersion, 0)
		d.str(ref, "subresource", &r.Subresource, 0)
		e.ObjectRef = r
	}
	if st, ok := d.obj(top, "responseStatus"); ok {
		s := &Status{}
		d.str(st, "status", &s.Status, 0)
		e.Present |= d.str(st, "message", &s.Message, FieldStatusMessage)
		e.Present |= d.str(st, "reason", &s.Reason, FieldStatusReason)
		e.Present |= d.code(st, "code", &s.Code, FieldStatusCode)
		e.ResponseStatus = s
	}
	if raw, ok := top["annotations"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &e.Annotations); err != nil {
			d.fail("annotations", "an object of strings")
		}
	}
	if d.err != nil {
		*e = Event{}
		return d.err
	}
	return nil
}

// object is one JSON object with its values still encoded.
type object map[string]json.RawMessage

// decoder reads typed values out of objects, keeping the first type error.
type decoder struct{ err error }

func (d *decoder) fail(key, want string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s is not %s", ErrNotAudit, key, want)
	}
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(raw, []byte("null")) }

// str decodes a string value into dst and returns f when the key holds one.
func (d *decoder) str(o object, key string, dst *string, f Field) Field {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return 0
	}
	if raw[0] != '"' || json.Unmarshal(raw, dst) != nil {
		d.fail(key, "a string")
		return 0
	}
	return f
}

// list decodes an array of strings (null elements become "") and returns f when it is
// not empty.
func (d *decoder) list(o object, key string, dst *[]string, f Field) Field {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return 0
	}
	if raw[0] != '[' || json.Unmarshal(raw, dst) != nil {
		d.fail(key, "an array of strings")
		return 0
	}
	if len(*dst) == 0 {
		*dst = nil
		return 0
	}
	return f
}

// obj returns the object under key; a missing key or null is reported as absent.
func (d *decoder) obj(o object, key string) (object, bool) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return nil, false
	}
	var sub object
	if raw[0] != '{' || json.Unmarshal(raw, &sub) != nil {
		d.fail(key, "an object")
		return nil, false
	}
	return sub, true
}

// code keeps a JSON number's text verbatim (403 stays "403", 403.0 stays "403.0"); a
// string holding the code, as some log pipelines write it, is decoded.
func (d *decoder) code(o object, key string, dst *string, f Field) Field {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return 0
	}
	switch c := raw[0]; {
	case c == '-' || (c >= '0' && c <= '9'):
		*dst = string(raw)
		return f
	case c == '"':
		return d.str(o, key, dst, f)
	}
	d.fail(key, "a number")
	return 0
}
