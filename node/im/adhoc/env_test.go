package adhoc

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/node/router/routertest"
)

// cmdReply is an iq reply to a command as a client reads it.
type cmdReply struct {
	Type  string `xml:"type,attr"`
	ID    string `xml:"id,attr"`
	Error *struct {
		Type string `xml:"type,attr"`
		Text string `xml:"text"`
		Cond []struct {
			XMLName xml.Name
		} `xml:",any"`
	} `xml:"error"`
	Command struct {
		XMLName   xml.Name
		Node      string `xml:"node,attr"`
		SessionID string `xml:"sessionid,attr"`
		Status    string `xml:"status,attr"`
		Actions   *struct {
			Execute string `xml:"execute,attr"`
			List    []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"actions"`
		Notes []struct {
			Type string `xml:"type,attr"`
			Text string `xml:",chardata"`
		} `xml:"note"`
		X *struct {
			Type   string `xml:"type,attr"`
			Fields []struct {
				Var    string   `xml:"var,attr"`
				Type   string   `xml:"type,attr"`
				Values []string `xml:"value"`
			} `xml:"field"`
		} `xml:"x"`
	} `xml:"command"`
	raw []byte
}

// condition is the error condition, followed by the specific XEP-0050 condition when the text
// names one ("bad-request/bad-sessionid").
func (r *cmdReply) condition() string {
	if r.Error == nil {
		return ""
	}
	c := ""
	specific := ""
	for _, e := range r.Error.Cond {
		switch {
		case e.XMLName.Space == "urn:ietf:params:xml:ns:xmpp-stanzas" && e.XMLName.Local != "text":
			c = e.XMLName.Local
		case e.XMLName.Space == NS:
			specific = "/" + e.XMLName.Local
		}
	}
	return c + specific
}

// actions lists the offered actions as "default: a b".
func (r *cmdReply) actions() string {
	if r.Command.Actions == nil {
		return ""
	}
	var l []string
	for _, a := range r.Command.Actions.List {
		l = append(l, a.XMLName.Local)
	}
	return r.Command.Actions.Execute + ": " + strings.Join(l, " ")
}

// field returns the values of a field of the response's form.
func (r *cmdReply) field(v string) []string {
	if r.Command.X == nil {
		return nil
	}
	for _, f := range r.Command.X.Fields {
		if f.Var == v {
			return f.Values
		}
	}
	return nil
}

func (r *cmdReply) notes() []string {
	var out []string
	for _, n := range r.Command.Notes {
		out = append(out, n.Type+": "+n.Text)
	}
	return out
}

// client is a bound session whose commands fail the test it was bound for.
type client struct {
	*routertest.Client
	t *testing.T
}

func bind(t *testing.T, r *router.Router, full string) *client {
	t.Helper()
	return &client{Client: routertest.Bind(t, r, full), t: t}
}

// do sends in and decodes the one reply.
func (c *client) do(in string) *cmdReply {
	c.t.Helper()
	raw := c.Exchange(c.t, in)
	r := &cmdReply{raw: raw}
	if err := xml.Unmarshal(raw, r); err != nil {
		c.t.Fatalf("reply %s: %v", raw, err)
	}
	return r
}

// exec builds a command request.
func exec(node, sessionid, action, form string) string {
	s := "<iq type='set' id='c' to='example.com'><command xmlns='" + NS + "' node='" + node + "'"
	if sessionid != "" {
		s += " sessionid='" + sessionid + "'"
	}
	if action != "" {
		s += " action='" + action + "'"
	}
	return s + ">" + form + "</command></iq>"
}

// submit builds a submitted form with one text field per pair.
func submit(pairs ...string) string {
	s := "<x xmlns='jabber:x:data' type='submit'>"
	for i := 0; i+1 < len(pairs); i += 2 {
		s += "<field var='" + pairs[i] + "'><value>" + pairs[i+1] + "</value></field>"
	}
	return s + "</x>"
}
