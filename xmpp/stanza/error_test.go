package stanza

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestDefaultType(t *testing.T) {
	tests := []struct {
		c    Condition
		want string
	}{
		{BadRequest, "modify"}, {Conflict, "cancel"}, {FeatureNotImplemented, "cancel"}, {Forbidden, "auth"},
		{ItemNotFound, "cancel"}, {JIDMalformed, "modify"}, {NotAuthorized, "auth"},
		{RecipientUnavailable, "wait"}, {ResourceConstraint, "wait"}, {ServiceUnavailable, "cancel"},
		{SubscriptionRequired, "auth"}, {UnexpectedRequest, "wait"}, {PolicyViolation, "modify"},
	}
	for _, tt := range tests {
		if got := tt.c.DefaultType(); got != tt.want {
			t.Errorf("%s: type %q, want %q", tt.c, got, tt.want)
		}
	}
}

func TestAppendReply(t *testing.T) {
	e := &Error{Condition: ServiceUnavailable, Text: "a < b & 'c'", By: "example.org"}
	got := string(e.AppendReply(nil, "iq", "x'1", "juliet@example.org", "romeo@example.net/r", nil))
	for _, part := range []string{"<iq type='error' ", " from='juliet@example.org'", " to='romeo@example.net/r'", "<error type='cancel' by='example.org'>", "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"} {
		if !strings.Contains(got, part) {
			t.Errorf("reply %s lacks %s", got, part)
		}
	}
	var v struct {
		Type  string `xml:"type,attr"`
		ID    string `xml:"id,attr"`
		Error struct {
			Type string `xml:"type,attr"`
			Text string `xml:"text"`
		} `xml:"error"`
	}
	if err := xml.Unmarshal([]byte(got), &v); err != nil {
		t.Fatalf("reply is not well-formed: %v", err)
	}
	if v.Type != "error" || v.Error.Type != "cancel" || v.Error.Text != "a < b & 'c'" || v.ID != "x'1" {
		t.Fatalf("decoded %+v", v)
	}
}

func TestApplicationCondition(t *testing.T) {
	e := &Error{Condition: BadRequest, App: []byte("<bad-sessionid xmlns='http://jabber.org/protocol/commands'/>")}
	got := string(e.AppendElement(nil))
	want := "<error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><bad-sessionid xmlns='http://jabber.org/protocol/commands'/></error>"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
