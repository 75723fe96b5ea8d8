package dataform

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/starling-xmpp/starling/xmpp/xml"
)

// element decodes s as one element of a jabber:client stream; ok is false if it is not well-formed.
func element(s string) (*xml.Element, bool) {
	d := xml.NewDecoder(xml.Limits{MaxElements: 4 * MaxValues})
	d.Feed([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"))
	d.Feed([]byte(s))
	if _, err := d.Next(); err != nil {
		return nil, false
	}
	tok, err := d.Next()
	if err != nil || tok.Kind != xml.ElementKind {
		return nil, false
	}
	return tok.Elem.Clone(), true
}

func mustElement(t *testing.T, s string) *xml.Element {
	t.Helper()
	e, ok := element(s)
	if !ok {
		t.Fatalf("not well-formed: %s", s)
	}
	return e
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Form
		err  string // substring of the error; "" for success
	}{
		{name: "submit", in: `<x xmlns='jabber:x:data' type='submit'>
			<field type='hidden' var='FORM_TYPE'><value>http://jabber.org/protocol/admin</value></field>
			<field var='accountjid'><value>juliet@example.com</value></field>
			<field var='password' type='text-private'><value>a &amp; b</value></field>
			<field var='notify' type='boolean'><value>true</value></field>
		</x>`, want: &Form{Type: "submit", Fields: []Field{
			{Var: "FORM_TYPE", Type: Hidden, Values: []string{"http://jabber.org/protocol/admin"}},
			{Var: "accountjid", Values: []string{"juliet@example.com"}},
			{Var: "password", Type: TextPrivate, Values: []string{"a & b"}},
			{Var: "notify", Type: Boolean, Values: []string{"true"}},
		}}},
		{name: "form with everything", in: `<x xmlns='jabber:x:data' type='form'><title>Add</title><instructions>one</instructions><instructions>two</instructions>
			<field var='max' type='list-single' label='Max'><desc>how many</desc><required/><value>25</value>
				<option label='25'><value>25</value></option><option><value>none</value></option></field>
			<field type='fixed'><value>a</value><value>b</value></field>
			<field var='jids' type='jid-multi'><value>a@b</value><value>c@d</value></field>
			<field var='v' type='text-single'><validate xmlns='http://jabber.org/protocol/xdata-validate' datatype='xs:string'/></field>
		</x>`, want: &Form{Type: "form", Title: "Add", Instructions: []string{"one", "two"}, Fields: []Field{
			{Var: "max", Type: ListSingle, Label: "Max", Desc: "how many", Required: true, Values: []string{"25"},
				Options: []Option{{Label: "25", Value: "25"}, {Value: "none"}}},
			{Type: Fixed, Values: []string{"a", "b"}},
			{Var: "jids", Type: JIDMulti, Values: []string{"a@b", "c@d"}},
			{Var: "v", Type: TextSingle},
		}}},
		{name: "prefixed", in: `<d:x xmlns:d='jabber:x:data' type='cancel'/>`, want: &Form{Type: "cancel"}},
		{name: "empty value", in: `<x xmlns='jabber:x:data' type='submit'><field var='a'><value/></field></x>`,
			want: &Form{Type: "submit", Fields: []Field{{Var: "a", Values: []string{""}}}}},
		{name: "wrong namespace", in: `<x xmlns='jabber:x:oob' type='submit'/>`, err: "not a jabber:x:data"},
		{name: "wrong name", in: `<form xmlns='jabber:x:data' type='submit'/>`, err: "not a jabber:x:data"},
		{name: "no type", in: `<x xmlns='jabber:x:data'/>`, err: "no type"},
		{name: "unknown type", in: `<x xmlns='jabber:x:data' type='reply'/>`, err: "unknown form type"},
		{name: "two titles", in: `<x xmlns='jabber:x:data' type='form'><title>a</title><title>b</title></x>`, err: "two titles"},
		{name: "unknown field type", in: `<x xmlns='jabber:x:data' type='submit'><field var='a' type='text-long'/></x>`, err: "unknown type"},
		{name: "no var", in: `<x xmlns='jabber:x:data' type='submit'><field type='text-single'><value>a</value></field></x>`, err: "no var"},
		{name: "duplicate var", in: `<x xmlns='jabber:x:data' type='submit'><field var='a'/><field var='a'/></x>`, err: "appears twice"},
		{name: "two values in untyped form field", in: `<x xmlns='jabber:x:data' type='form'><field var='a'><value>1</value><value>2</value></field></x>`, err: "has 2 values"},
		{name: "two values in text-single", in: `<x xmlns='jabber:x:data' type='submit'><field var='a' type='text-single'><value>1</value><value>2</value></field></x>`, err: "has 2 values"},
		{name: "two values in untyped submitted field", in: `<x xmlns='jabber:x:data' type='submit'><field var='a'><value>1</value><value>2</value></field></x>`,
			want: &Form{Type: "submit", Fields: []Field{{Var: "a", Values: []string{"1", "2"}}}}},
		{name: "two values in jid-single", in: `<x xmlns='jabber:x:data' type='submit'><field var='a' type='jid-single'><value>1</value><value>2</value></field></x>`, err: "has 2 values"},
		{name: "bad boolean", in: `<x xmlns='jabber:x:data' type='submit'><field var='a' type='boolean'><value>yes</value></field></x>`, err: "not a boolean"},
		{name: "option without value", in: `<x xmlns='jabber:x:data' type='form'><field var='a' type='list-single'><option label='x'/></field></x>`, err: "0 values"},
		{name: "two descs", in: `<x xmlns='jabber:x:data' type='form'><field var='a'><desc>1</desc><desc>2</desc></field></x>`, err: "two descriptions"},
		{name: "too many fields", in: `<x xmlns='jabber:x:data' type='submit'>` + strings.Repeat(`<field type='fixed'/>`, MaxFields+1) + `</x>`, err: "more than 256 fields"},
		{name: "too many values", in: `<x xmlns='jabber:x:data' type='submit'><field var='a' type='text-multi'>` + strings.Repeat(`<value/>`, MaxValues+1) + `</field></x>`, err: "more than 1024 values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(mustElement(t, tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			roundTrip(t, got)
		})
	}
}

func TestParseNil(t *testing.T) {
	if _, err := Parse(nil); !errors.Is(err, ErrNotForm) {
		t.Errorf("Parse(nil) = %v", err)
	}
}

// roundTrip checks that Append writes what Parse reads back unchanged.
func roundTrip(t testing.TB, f *Form) {
	t.Helper()
	out := f.Append(nil)
	e, ok := element(string(out))
	if !ok {
		t.Fatalf("Append wrote malformed XML: %s", out)
	}
	back, err := Parse(e)
	if err != nil {
		t.Fatalf("parse %s: %v", out, err)
	}
	if !reflect.DeepEqual(normal(back), normal(f)) {
		t.Fatalf("round trip through %s\ngot  %+v\nwant %+v", out, back, f)
	}
}

// normal makes empty and nil slices alike for comparison.
func normal(f *Form) *Form {
	c := *f
	if len(c.Instructions) == 0 {
		c.Instructions = nil
	}
	if len(c.Fields) == 0 {
		c.Fields = nil
	}
	c.Fields = append([]Field(nil), c.Fields...)
	for i := range c.Fields {
		if len(c.Fields[i].Values) == 0 {
			c.Fields[i].Values = nil
		}
		if len(c.Fields[i].Options) == 0 {
			c.Fields[i].Options = nil
		}
	}
	return &c
}

func TestAccessors(t *testing.T) {
	f, err := Parse(mustElement(t, `<x xmlns='jabber:x:data' type='submit'>
		<field type='hidden' var='FORM_TYPE'><value>urn:x</value></field>
		<field var='jids' type='jid-multi'><value>a@b</value><value>c@d</value></field>
		<field var='on' type='boolean'><value>1</value></field>
		<field var='off' type='boolean'><value> false </value></field>
		<field var='empty'/></x>`))
	if err != nil {
		t.Fatal(err)
	}
	if f.FormType() != "urn:x" {
		t.Errorf("FormType %q", f.FormType())
	}
	if got := f.Values("jids"); !reflect.DeepEqual(got, []string{"a@b", "c@d"}) {
		t.Errorf("Values %q", got)
	}
	if f.Value("jids") != "a@b" || f.Value("empty") != "" || f.Value("absent") != "" || f.Values("absent") != nil {
		t.Error("Value of multi, empty or absent field")
	}
	for v, want := range map[string]bool{"on": true, "off": false, "empty": false, "absent": false} {
		if got, err := f.Bool(v); err != nil || got != want {
			t.Errorf("Bool(%s) = %v, %v", v, got, err)
		}
	}
	if f.Field("on") == nil || f.Field("nope") != nil {
		t.Error("Field lookup")
	}
}

// TestAppendEscapes checks that text with markup characters survives.
func TestAppendEscapes(t *testing.T) {
	f := &Form{Type: TypeResult, Title: "<b>&", Instructions: []string{"line\r\nbreak"}, Fields: []Field{
		{Var: "a'b\"c", Type: TextMulti, Label: "<l>", Values: []string{"</value>", "x]]>y"}},
		{Var: "o", Type: ListSingle, Options: []Option{{Label: "'", Value: "&amp;"}}},
	}}
	roundTrip(t, f)
}

// FuzzParse checks that Parse never panics on any well-formed element, and that whatever it
// accepts, Append writes back so that Parse reads the same form.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<x xmlns='jabber:x:data' type='submit'><field var='a'><value>1</value></field></x>`,
		`<x xmlns='jabber:x:data' type='form'><title>t</title><instructions>i</instructions><field var='m' type='list-multi' label='L'><desc>d</desc><required/><option label='o'><value>v</value></option></field></x>`,
		`<x xmlns='jabber:x:data' type='result'><field type='fixed'><value>a</value><value>b</value></field><reported/><item/></x>`,
		`<x xmlns='jabber:x:data' type='submit'><field var='b' type='boolean'><value>true</value></field><field var='FORM_TYPE' type='hidden'><value>urn:x</value></field></x>`,
		`<x xmlns='jabber:x:data' type='cancel'/>`,
		`<p:x xmlns:p='jabber:x:data' type='submit'><p:field var='a'><p:value>&#xD;&lt;</p:value></p:field><field var='b'/></p:x>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, ok := element(s)
		if !ok {
			return
		}
		form, err := Parse(e)
		if err != nil {
			if form != nil {
				t.Fatal("Parse returned a form and an error")
			}
			return
		}
		roundTrip(t, form)
	})
}

// BenchmarkParse reads a typical XEP-0133 submission.
func BenchmarkParse(b *testing.B) {
	e, ok := element(`<x xmlns='jabber:x:data' type='submit'><field type='hidden' var='FORM_TYPE'><value>http://jabber.org/protocol/admin</value></field><field var='accountjid'><value>juliet@example.com</value></field><field var='password'><value>s3cret</value></field><field var='password-verify'><value>s3cret</value></field></x>`)
	if !ok {
		b.Fatal("seed")
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(e.Raw())))
	for b.Loop() {
		if _, err := Parse(e); err != nil {
			b.Fatal(err)
		}
	}
}
