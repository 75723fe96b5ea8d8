// Package dataform reads and writes Data Forms (XEP-0004), the jabber:x:data forms that ad-hoc
// commands (XEP-0050) exchange: a server sends a form, the client submits it back.
//
// Parse is strict where a sloppy reading would change meaning (an unknown form or field type,
// two fields with one var, several values in a single-value field, a boolean that is neither 0/1
// nor true/false) and bounded (MaxFields, MaxValues) so that a submitted form costs the server no
// more than the stanza it came in. Elements of other namespaces inside a form (extensions such as
// XEP-0122 validation) are skipped.
package dataform

import (
	"errors"
	"fmt"
	"strings"

	"github.com/starling-xmpp/starling/xmpp/xml"
)

// NS is the XEP-0004 namespace.
const NS = "jabber:x:data"

// Form types (XEP-0004 §3.1).
const (
	TypeForm   = "form"
	TypeSubmit = "submit"
	TypeCancel = "cancel"
	TypeResult = "result"
)

// Field types (XEP-0004 §3.3).
const (
	Boolean     = "boolean"
	Fixed       = "fixed"
	Hidden      = "hidden"
	JIDMulti    = "jid-multi"
	JIDSingle   = "jid-single"
	ListMulti   = "list-multi"
	ListSingle  = "list-single"
	TextMulti   = "text-multi"
	TextPrivate = "text-private"
	TextSingle  = "text-single"
)

// FormTypeVar is the var of the hidden field that names what a form is for (XEP-0068).
const FormTypeVar = "FORM_TYPE"

// Bounds on a parsed form.
const (
	MaxFields = 256  // fields in one form
	MaxValues = 1024 // values and options of one field
)

// Option is a choice of a list field.
type Option struct {
	Label, Value string
}

// Field is one form field. An empty Type means text-single.
type Field struct {
	Var, Type, Label, Desc string
	Required               bool
	Values                 []string
	Options                []Option
}

// Form is a data form.
type Form struct {
	Type         string
	Title        string
	Instructions []string
	Fields       []Field
}

// ErrNotForm is returned by Parse for an element that is not <x xmlns='jabber:x:data'/>.
var ErrNotForm = errors.New("dataform: not a jabber:x:data <x/> element")

// multi reports whether a field of type t may carry several values.
func multi(t string) bool {
	switch t {
	case JIDMulti, ListMulti, TextMulti, Fixed:
		return true
	}
	return false
}

func knownFieldType(t string) bool {
	switch t {
	case "", Boolean, Fixed, Hidden, JIDMulti, JIDSingle, ListMulti, ListSingle, TextMulti, TextPrivate, TextSingle:
		return true
	}
	return false
}

// Parse reads the form e. The result owns its strings: it outlives e.
func Parse(e *xml.Element) (*Form, error) {
	if e == nil || !e.Is(NS, "x") {
		return nil, ErrNotForm
	}
	f := &Form{Type: string(e.Attr("type"))}
	switch f.Type {
	case TypeForm, TypeSubmit, TypeCancel, TypeResult:
	case "":
		return nil, errors.New("dataform: the form has no type")
	default:
		return nil, fmt.Errorf("dataform: unknown form type %q", f.Type)
	}
	seen := make(map[string]struct{})
	hasTitle := false
	for c := e.FirstChild(); c != nil; c = c.NextSibling() {
		if string(c.Space()) != NS {
			continue
		}
		switch string(c.Name()) {
		case "title":
			if hasTitle {
				return nil, errors.New("dataform: two titles")
			}
			f.Title, hasTitle = string(c.Text()), true
		case "instructions":
			f.Instructions = append(f.Instructions, string(c.Text()))
			if len(f.Instructions) > MaxValues {
				return nil, fmt.Errorf("dataform: more than %d instructions", MaxValues)
			}
		case "field":
			if len(f.Fields) == MaxFields {
				return nil, fmt.Errorf("dataform: more than %d fields", MaxFields)
			}
			fd, err := parseField(c, f.Type)
			if err != nil {
				return nil, err
			}
			if fd.Var != "" {
				if _, dup := seen[fd.Var]; dup {
					return nil, fmt.Errorf("dataform: field %q appears twice", fd.Var)
				}
				seen[fd.Var] = struct{}{}
			}
			f.Fields = append(f.Fields, fd)
		}
		// <reported/> and <item/> (multi-item results) are not used by the server's forms.
	}
	return f, nil
}

func parseField(e *xml.Element, formType string) (Field, error) {
	fd := Field{Var: string(e.Attr("var")), Type: string(e.Attr("type")), Label: string(e.Attr("label"))}
	if !knownFieldType(fd.Type) {
		return fd, fmt.Errorf("dataform: field %q has unknown type %q", fd.Var, fd.Type)
	}
	if fd.Var == "" && fd.Type != Fixed {
		return fd, errors.New("dataform: a field other than fixed has no var")
	}
	hasDesc := false
	for c := e.FirstChild(); c != nil; c = c.NextSibling() {
		if string(c.Space()) != NS {
			continue
		}
		switch string(c.Name()) {
		case "value":
			fd.Values = append(fd.Values, string(c.Text()))
		case "required":
			fd.Required = true
		case "desc":
			if hasDesc {
				return fd, fmt.Errorf("dataform: field %q has two descriptions", fd.Var)
			}
			fd.Desc, hasDesc = string(c.Text()), true
		case "option":
			var vals []string
			for v := c.FirstChild(); v != nil; v = v.NextSibling() {
				if v.Is(NS, "value") {
					vals = append(vals, string(v.Text()))
				}
			}
			if len(vals) != 1 {
				return fd, fmt.Errorf("dataform: an option of field %q has %d values, want 1", fd.Var, len(vals))
			}
			fd.Options = append(fd.Options, Option{Label: string(c.Attr("label")), Value: vals[0]})
		}
		if len(fd.Values)+len(fd.Options) > MaxValues {
			return fd, fmt.Errorf("dataform: field %q has more than %d values and options", fd.Var, MaxValues)
		}
	}
	// A submitted form may leave out field types (XEP-0004 §3.2): the receiver knows them, and
	// a field without one may carry several values. Elsewhere no type means text-single.
	untypedSubmit := fd.Type == "" && formType != TypeForm
	if len(fd.Values) > 1 && !multi(fd.Type) && !untypedSubmit {
		return fd, fmt.Errorf("dataform: field %q of type %s has %d values", fd.Var, typeName(fd.Type), len(fd.Values))
	}
	if fd.Type == Boolean && len(fd.Values) == 1 {
		if _, err := parseBool(fd.Values[0]); err != nil {
			return fd, fmt.Errorf("dataform: field %q: %w", fd.Var, err)
		}
	}
	return fd, nil
}

func typeName(t string) string {
	if t == "" {
		return TextSingle
	}
	return t
}

func parseBool(s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (0, 1, false, true)", s)
}

// Field returns the field named v, or nil.
func (f *Form) Field(v string) *Field {
	for i := range f.Fields {
		if f.Fields[i].Var == v {
			return &f.Fields[i]
		}
	}
	return nil
}

// Value returns the first value of field v, "" if the field is absent or empty.
func (f *Form) Value(v string) string {
	if fd := f.Field(v); fd != nil && len(fd.Values) > 0 {
		return fd.Values[0]
	}
	return ""
}

// Values returns the values of field v.
func (f *Form) Values(v string) []string {
	if fd := f.Field(v); fd != nil {
		return fd.Values
	}
	return nil
}

// Bool returns the boolean value of field v (false when absent or empty).
func (f *Form) Bool(v string) (bool, error) {
	s := f.Value(v)
	if s == "" {
		return false, nil
	}
	return parseBool(s)
}

// FormType returns the value of the hidden FORM_TYPE field, "" if there is none.
func (f *Form) FormType() string { return f.Value(FormTypeVar) }

// Append appends the form as an <x xmlns='jabber:x:data'/> element.
func (f *Form) Append(dst []byte) []byte {
	b := xml.NewBuilder(dst)
	b.Start("x", "xmlns", NS, "type", f.Type)
	if f.Title != "" {
		b.Start("title")
		b.Text(f.Title)
		b.End()
	}
	for _, in := range f.Instructions {
		b.Start("instructions")
		b.Text(in)
		b.End()
	}
	for i := range f.Fields {
		appendField(b, &f.Fields[i])
	}
	b.End()
	return b.Bytes()
}

func appendField(b *xml.Builder, fd *Field) {
	attrs := make([]string, 0, 6)
	if fd.Var != "" {
		attrs = append(attrs, "var", fd.Var)
	}
	if fd.Type != "" {
		attrs = append(attrs, "type", fd.Type)
	}
	if fd.Label != "" {
		attrs = append(attrs, "label", fd.Label)
	}
	b.Start("field", attrs...)
	if fd.Desc != "" {
		b.Start("desc")
		b.Text(fd.Desc)
		b.End()
	}
	if fd.Required {
		b.Start("required")
		b.End()
	}
	for _, v := range fd.Values {
		b.Start("value")
		b.Text(v)
		b.End()
	}
	for _, o := range fd.Options {
		if o.Label != "" {
			b.Start("option", "label", o.Label)
		} else {
			b.Start("option")
		}
		b.Start("value")
		b.Text(o.Value)
		b.End()
		b.End()
	}
	b.End()
}
