package cwlogs

import (
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
)

// ParseMessage parses an already-inflated subscription message (DATA_MESSAGE or
// CONTROL_MESSAGE JSON), as found in decoded samples. Messages of the result alias msg.
func ParseMessage(msg []byte) (Payload, error) {
	var ps payloadScanner
	return ps.parse(msg)
}

// payloadScanner parses subscription messages, reusing its buffers between calls.
type payloadScanner struct {
	events []LogEvent
	ids    []byte // the ids of one payload back to back, turned into one string
	idEnds []int
}

// parse parses one subscription message. The fast path walks the JSON with the scanner,
// in any key order, and keeps each message as the raw bytes between its quotes (still
// escaped), so the large strings are never copied. Anything else (a message that is not
// a string, a fractional timestamp, broken JSON) goes to encoding/json, which either
// decodes it or explains what is wrong.
func (ps *payloadScanner) parse(msg []byte) (Payload, error) {
	p, ok := ps.fast(msg)
	if !ok {
		var err error
		if p, err = parseJSON(msg); err != nil {
			return Payload{}, err
		}
	}
	switch p.MessageType {
	case DataMessage, ControlMessage:
		return p, nil
	}
	return Payload{}, fmt.Errorf("parse subscription message: %w %q", ErrUnknownMessageType, p.MessageType)
}

func (ps *payloadScanner) fast(msg []byte) (Payload, bool) {
	var p Payload
	s := scanner{b: msg}
	str := func(dst *string) bool {
		v, ok := s.text()
		*dst = string(v)
		return ok
	}
	start := len(ps.events)
	ok := s.object(func(key []byte) bool {
		if ok, read := envelopeMember(&p, key, str, s.array); read {
			return ok
		}
		switch string(key) {
		case "logEvents":
			// A repeated key replaces the earlier array, as with encoding/json.
			ps.events = ps.events[:start]
			ps.ids, ps.idEnds = ps.ids[:0], ps.idEnds[:0]
			if s.ws() == '[' {
				if next, ok := ps.split(s.b, s.i); ok {
					s.i = next
					return true
				}
			}
			ps.events = ps.events[:start]
			ps.ids, ps.idEnds = ps.ids[:0], ps.idEnds[:0]
			return s.array(func() bool {
				var e LogEvent
				idStart := len(ps.ids)
				ok := s.object(func(key []byte) bool {
					switch string(key) {
					case "id":
						v, ok := s.text()
						// The id is filled in below from one string for all ids:
						// one allocation per payload instead of one per event.
						ps.ids = append(ps.ids[:idStart], v...)
						return ok
					case "timestamp":
						n, ok := s.int()
						e.Timestamp = n
						return ok
					case "message":
						v, ok := s.str()
						e.Message, e.Escaped = v, true
						return ok
					default:
						return s.skip()
					}
				})
				ps.events = append(ps.events, e)
				ps.idEnds = append(ps.idEnds, len(ps.ids))
				return ok
			})
		default:
			return s.skip()
		}
	}) && s.end()
	if !ok {
		ps.events = ps.events[:start]
		return Payload{}, false
	}
	if len(ps.events)-start != len(ps.idEnds) {
		// Every event has its id end; anything else is a scanner bug: use encoding/json.
		ps.events = ps.events[:start]
		return Payload{}, false
	}
	if n := len(ps.events) - start; n > 0 {
		p.LogEvents = ps.events[start:len(ps.events):len(ps.events)]
		all, from := string(ps.ids), 0
		for i := range p.LogEvents {
			p.LogEvents[i].ID = all[from:ps.idEnds[i]]
			from = ps.idEnds[i]
		}
	}
	return p, true
}

// subscriptionMessage is the decoded subscription message for the encoding/json fallback.
type subscriptionMessage struct {
	events.CloudwatchLogsData
	PolicyLevel string `json:"policyLevel"`
}

func parseJSON(msg []byte) (Payload, error) {
	var m subscriptionMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		return Payload{}, fmt.Errorf("parse subscription message: %w", err)
	}
	p := Payload{
		MessageType:         MessageType(m.MessageType),
		Owner:               m.Owner,
		LogGroup:            m.LogGroup,
		LogStream:           m.LogStream,
		SubscriptionFilters: m.SubscriptionFilters,
		PolicyLevel:         m.PolicyLevel,
	}
	for _, e := range m.LogEvents {
		p.LogEvents = append(p.LogEvents, LogEvent{ID: e.ID, Timestamp: e.Timestamp, Message: []byte(e.Message)})
	}
	return p, nil
}

// envelopeMember reads member key of a subscription message's envelope into p, with str
// for a string value and array for an array of values; read is false for logEvents and
// unknown keys, which the caller reads itself. The buffered and the streaming decoders
// both use it, so they read the envelope alike.
func envelopeMember(p *Payload, key []byte, str func(*string) bool, array func(func() bool) bool) (ok, read bool) {
	switch string(key) {
	case "messageType":
		var t string
		ok := str(&t)
		p.MessageType = MessageType(t)
		return ok, true
	case "owner":
		return str(&p.Owner), true
	case "logGroup":
		return str(&p.LogGroup), true
	case "logStream":
		return str(&p.LogStream), true
	case "policyLevel":
		return str(&p.PolicyLevel), true
	case "subscriptionFilters":
		p.SubscriptionFilters = []string{}
		return array(func() bool {
			var f string
			ok := str(&f)
			p.SubscriptionFilters = append(p.SubscriptionFilters, f)
			return ok
		}), true
	}
	return false, false
}
