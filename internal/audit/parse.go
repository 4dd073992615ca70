package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/eks-unauthorized-access/detector/internal/jsonscan"
	"github.com/eks-unauthorized-access/detector/internal/jsonstring"
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
//
// A strict tokenizer reads the line in one pass, validating it and noting where each
// member's value lies, without building a map or decoding the bodies; a line it does not
// accept goes to encoding/json, which decodes it or says what is wrong. Where a key
// appears twice the last one wins, as with encoding/json.
func (e *Event) UnmarshalJSON(b []byte) error {
	top, ok := scanObject(b, 24)
	if !ok {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			var syntaxErr *json.SyntaxError
			if errors.As(err, &syntaxErr) || !json.Valid(b) {
				return fmt.Errorf("%w: %w", ErrNotJSON, err)
			}
			return fmt.Errorf("%w: not a JSON object", ErrNotAudit)
		}
		top = objectOf(m)
	}
	*e = Event{}
	d := decoder{}
	// Fields the rule, the by-clause or the audit check read: a value of the wrong type
	// rejects the line (ErrNotAudit), since the event cannot be evaluated as written.
	d.str(top, "kind", &e.Kind, 0)
	d.str(top, "apiVersion", &e.APIVersion, 0)
	var stage string
	e.Present |= d.str(top, "stage", &stage, FieldStage)
	e.Stage = Stage(stage)
	e.Present |= d.str(top, "requestURI", &e.RequestURI, FieldRequestURI)
	e.Present |= d.str(top, "verb", &e.Verb, FieldVerb)
	e.Present |= d.list(top, "sourceIPs", &e.SourceIPs, FieldSourceIPs)
	e.Present |= d.str(top, "userAgent", &e.UserAgent, FieldUserAgent)
	e.Present |= d.str(top, "requestReceivedTimestamp", &e.RequestReceivedTimestamp, FieldRequestReceivedTimestamp)
	// Fields nothing decides on: a value of the wrong type is read as absent, so it
	// cannot cost a matching event (Splunk still matches such a line).
	optStr(top, "level", &e.Level)
	optStr(top, "auditID", &e.AuditID)
	if optStr(top, "stageTimestamp", &e.StageTimestamp) {
		e.Present |= FieldStageTimestamp
	}
	if user, ok := d.obj(top, "user"); ok {
		e.hasUser = true
		e.Present |= d.str(user, "username", &e.User.Username, FieldUsername)
		e.Present |= d.str(user, "uid", &e.User.UID, FieldUID)
		e.Present |= d.groups(user, "groups", &e.User.Groups, FieldGroups)
		if extra, ok := optObj(user, "extra"); ok {
			e.User.Extra = identityOf(extra)
		}
	}
	if ref, ok := d.obj(top, "objectRef"); ok {
		r := &ObjectReference{}
		e.Present |= d.str(ref, "resource", &r.Resource, FieldResource)
		e.Present |= d.str(ref, "namespace", &r.Namespace, FieldNamespace)
		optStr(ref, "name", &r.Name)
		optStr(ref, "apiGroup", &r.APIGroup)
		optStr(ref, "apiVersion", &r.APIVersion)
		optStr(ref, "subresource", &r.Subresource)
		e.ObjectRef = r
	}
	if st, ok := d.obj(top, "responseStatus"); ok {
		s := &Status{}
		optStr(st, "status", &s.Status)
		e.Present |= d.str(st, "message", &s.Message, FieldStatusMessage)
		e.Present |= d.str(st, "reason", &s.Reason, FieldStatusReason)
		e.Present |= d.code(st, "code", &s.Code, FieldStatusCode)
		e.ResponseStatus = s
	}
	// Annotations: only string values are kept (null is "", as encoding/json decodes it
	// into a map; the last key wins); any other value, or annotations that are not an
	// object, are read as absent. The rule reads one annotation, the authorizer's
	// decision, and compares it with a string, so a value of another type never matched.
	if ann, ok := optObj(top, "annotations"); ok {
		e.Annotations = make(map[string]string, len(ann))
		for _, m := range ann {
			var v string
			if !isNull(m.raw) && !decodeString(m.raw, &v) {
				continue
			}
			e.Annotations[string(m.key)] = v
		}
	}
	if d.err != nil {
		*e = Event{}
		return d.err
	}
	return nil
}

// identityOf reads the IdentityKeys out of user.extra, nothing else: each key's first
// string value (user.extra maps keys to lists of strings). A value of another shape is
// read as absent; nothing here decides whether the event matches.
func identityOf(extra object) Identity {
	var id Identity
	for i, f := range id.fields() {
		raw, ok := extra.get(IdentityKeys[i])
		if !ok {
			continue
		}
		var l []string
		if decodeList(raw, &l) {
			for _, v := range l {
				if v != "" {
					*f = v
					break
				}
			}
		}
	}
	return id
}

// object is one JSON object's members in order, keys decoded, values still encoded.
type object []member

// member is one key and its encoded value.
type member struct {
	key []byte
	raw []byte
}

// get returns the value of the last member named key, as encoding/json keeps it.
func (o object) get(key string) ([]byte, bool) {
	for i := len(o) - 1; i >= 0; i-- {
		if string(o[i].key) == key {
			return o[i].raw, true
		}
	}
	return nil, false
}

// objectOf turns encoding/json's decoding of an object into an object.
func objectOf(m map[string]json.RawMessage) object {
	o := make(object, 0, len(m))
	for k, v := range m {
		o = append(o, member{key: []byte(k), raw: v})
	}
	return o
}

// decodeString decodes a JSON string value exactly as encoding/json does; plain strings
// (no escape, valid UTF-8) are copied without it.
func decodeString(raw []byte, dst *string) bool {
	if len(raw) < 2 || raw[0] != '"' {
		return false
	}
	if c := raw[1 : len(raw)-1]; bytes.IndexByte(c, '\\') < 0 && utf8.Valid(c) {
		*dst = string(c)
		return true
	}
	v, err := jsonstring.Unescape(raw[1 : len(raw)-1])
	if err != nil {
		return false
	}
	*dst = string(v)
	return true
}

// decoder reads typed values out of objects, keeping the first type error.
type decoder struct{ err error }

func (d *decoder) fail(key, want string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s is not %s", ErrNotAudit, key, want)
	}
}

func isNull(raw []byte) bool { return bytes.Equal(raw, []byte("null")) }

// str decodes a string value into dst and returns f when the key holds one.
func (d *decoder) str(o object, key string, dst *string, f Field) Field {
	raw, ok := o.get(key)
	if !ok || isNull(raw) {
		return 0
	}
	if !decodeString(raw, dst) {
		d.fail(key, "a string")
		return 0
	}
	return f
}

// optStr decodes a string value into dst and reports whether the key holds one; a value
// of another type is ignored.
func optStr(o object, key string, dst *string) bool {
	raw, ok := o.get(key)
	if !ok || isNull(raw) {
		return false
	}
	if !decodeString(raw, dst) {
		*dst = ""
		return false
	}
	return true
}

// optObj returns the object under key; anything else is reported as absent.
func optObj(o object, key string) (object, bool) {
	var d decoder
	sub, ok := d.obj(o, key)
	return sub, ok && d.err == nil
}

// groups decodes user.groups as Splunk extracts user.groups{}: strings as encoding/json
// decodes them, null as "" (as encoding/json does in a []string), a number or boolean as
// its JSON text; an object or array element has no user.groups{} value (Splunk extracts
// it under a longer path) and is left out. groups that is not an array rejects the line.
// It returns f when at least one value is kept.
func (d *decoder) groups(o object, key string, dst *[]string, f Field) Field {
	raw, ok := o.get(key)
	if !ok || isNull(raw) {
		return 0
	}
	if !decodeList(raw, dst) {
		var elems []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &elems) != nil {
			d.fail(key, "an array")
			return 0
		}
		out := make([]string, 0, len(elems))
		for _, el := range elems {
			var v string
			switch c := el[0]; {
			case c == '"':
				if !decodeString(el, &v) {
					continue
				}
			case c == 'n':
			case c == 't', c == 'f', c == '-', c >= '0' && c <= '9':
				v = string(el)
			default:
				continue
			}
			out = append(out, v)
		}
		*dst = out
	}
	if len(*dst) == 0 {
		*dst = nil
		return 0
	}
	return f
}

// list decodes an array of strings (null elements become "") and returns f when it is
// not empty.
func (d *decoder) list(o object, key string, dst *[]string, f Field) Field {
	raw, ok := o.get(key)
	if !ok || isNull(raw) {
		return 0
	}
	if !decodeList(raw, dst) {
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
	raw, ok := o.get(key)
	if !ok || isNull(raw) {
		return nil, false
	}
	if sub, ok := scanObject(raw, 8); ok {
		return sub, true
	}
	var m map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		d.fail(key, "an object")
		return nil, false
	}
	return objectOf(m), true
}

// code keeps a JSON number's text verbatim (403 stays "403", 403.0 stays "403.0"); a
// string holding the code, as some log pipelines write it, is decoded.
func (d *decoder) code(o object, key string, dst *string, f Field) Field {
	raw, ok := o.get(key)
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

// decodeList decodes an array of strings as encoding/json does into a []string: null
// elements become "".
func decodeList(raw []byte, dst *[]string) bool {
	if out, ok := stringList(raw); ok {
		*dst = out
		return true
	}
	// Not the simple form: let encoding/json decide.
	return raw[0] == '[' && json.Unmarshal(raw, dst) == nil
}

// stringList reads raw as an array whose elements are strings or null, or reports false.
func stringList(raw []byte) ([]string, bool) {
	i := jsonscan.Space(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil, false
	}
	var out []string
	if i = jsonscan.Space(raw, i+1); i < len(raw) && raw[i] == ']' {
		return out, true
	}
	for {
		end, ok := jsonscan.Value(raw, i, maxDepth)
		if !ok {
			return nil, false
		}
		var v string
		if el := raw[i:end]; !isNull(el) && !decodeString(el, &v) {
			return nil, false
		}
		out = append(out, v)
		switch i = jsonscan.Space(raw, end); {
		case i < len(raw) && raw[i] == ',':
			i = jsonscan.Space(raw, i+1) // the next element starts after any whitespace
		case i < len(raw) && raw[i] == ']':
			return out, true
		default:
			return nil, false
		}
	}
}

// maxDepth bounds the nesting the parser reads itself; deeper lines go to encoding/json.
const maxDepth = 256

// scanObject reads b as one JSON object (surrounding whitespace allowed) and returns its
// members, or ok=false when b is not a JSON object or the parser is not sure that it is
// valid JSON (then encoding/json decides). It accepts only what encoding/json accepts: the
// grammar is jsonscan's strict one. size is the expected number of members.
func scanObject(b []byte, size int) (object, bool) {
	i := jsonscan.Space(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	o, end, ok := members(make(object, 0, size), b, i)
	if !ok || jsonscan.Space(b, end) != len(b) {
		return nil, false
	}
	return o, true
}

// members reads the object that opens at b[i], appending its members to o (decoded keys,
// raw values); end is the index after it.
func members(o object, b []byte, i int) (_ object, end int, ok bool) {
	i = jsonscan.Space(b, i+1)
	if i < len(b) && b[i] == '}' {
		return o, i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return o, i, false
		}
		end, plain, ok := jsonscan.String(b, i)
		if !ok {
			return o, i, false
		}
		key := b[i+1 : end-1]
		if !plain {
			var k string
			if !decodeString(b[i:end], &k) {
				return o, i, false
			}
			key = []byte(k)
		}
		if i = jsonscan.Space(b, end); i >= len(b) || b[i] != ':' {
			return o, i, false
		}
		start := jsonscan.Space(b, i+1)
		if end, ok = jsonscan.Value(b, start, maxDepth); !ok {
			return o, i, false
		}
		o = append(o, member{key: key, raw: b[start:end]})
		switch i = jsonscan.Space(b, end); {
		case i < len(b) && b[i] == ',':
			i = jsonscan.Space(b, i+1)
		case i < len(b) && b[i] == '}':
			return o, i + 1, true
		default:
			return o, i, false
		}
	}
}
