package disco

import (
	"encoding/xml"
	"testing"

	"github.com/starling-xmpp/starling/node/router/routertest"
)

// result is a disco reply as a client reads it.
type result struct {
	routertest.Reply
	Query struct {
		XMLName    xml.Name
		Node       string `xml:"node,attr"`
		Identities []struct {
			Category string `xml:"category,attr"`
			Type     string `xml:"type,attr"`
			Name     string `xml:"name,attr"`
		} `xml:"identity"`
		Features []struct {
			Var string `xml:"var,attr"`
		} `xml:"feature"`
		Items []struct {
			JID  string `xml:"jid,attr"`
			Node string `xml:"node,attr"`
			Name string `xml:"name,attr"`
		} `xml:"item"`
	} `xml:"query"`
}

// identities summarises the identities as "category/type/name".
func (r *result) identities() []string {
	var out []string
	for _, id := range r.Query.Identities {
		out = append(out, id.Category+"/"+id.Type+"/"+id.Name)
	}
	return out
}

func (r *result) features() []string {
	var out []string
	for _, f := range r.Query.Features {
		out = append(out, f.Var)
	}
	return out
}

// items summarises the items as "jid node name".
func (r *result) items() []string {
	var out []string
	for _, it := range r.Query.Items {
		out = append(out, it.JID+" "+it.Node+" "+it.Name)
	}
	return out
}

// do routes one stanza from c and decodes the single reply.
func do(t *testing.T, c *routertest.Client, in string) *result {
	t.Helper()
	raw := c.Exchange(t, in)
	got := result{Reply: routertest.Reply{Raw: raw}}
	if err := xml.Unmarshal(raw, &got); err != nil {
		t.Fatalf("reply %q: %v", raw, err)
	}
	if got.Type == "result" && got.Query.XMLName.Local != "query" {
		t.Fatalf("result without query: %s", raw)
	}
	return &got
}
