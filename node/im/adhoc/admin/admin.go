// Package admin holds the Service Administration commands (XEP-0133) an operator needs first, as
// ad-hoc commands (package adhoc) for the configured admins: add a user, delete users, change a
// user's password, list the online users, count the sessions, count the registered users.
//
// Admins are server-wide; the counts and lists are of the domain the command was sent to. Each
// command first answers with its form (a client then shows it) and acts when the form comes back;
// a client that submits the form with its first request gets the result at once.
//
// Try it as an admin (e.g. with Gajim's "Execute Command" on the server): execute
// http://jabber.org/protocol/admin#add-user, fill in the form, submit.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/starling-xmpp/starling/node/accounts"
	"github.com/starling-xmpp/starling/node/im/adhoc"
	"github.com/starling-xmpp/starling/node/im/adhoc/dataform"
	"github.com/starling-xmpp/starling/node/router"
	"github.com/starling-xmpp/starling/xmpp/jid"
	"github.com/starling-xmpp/starling/xmpp/stanza"
)

// NS is the XEP-0133 namespace: the FORM_TYPE of its forms and the prefix of its command nodes.
const NS = "http://jabber.org/protocol/admin"

// The command nodes.
const (
	NodeAddUser               = NS + "#add-user"
	NodeDeleteUser            = NS + "#delete-user"
	NodeChangeUserPassword    = NS + "#change-user-password"
	NodeGetOnlineUsersList    = NS + "#get-online-users-list"
	NodeGetOnlineUsersNum     = NS + "#get-online-users-num"
	NodeGetRegisteredUsersNum = NS + "#get-registered-users-num"
)

// Accounts is the part of node/accounts the commands use.
type Accounts interface {
	Create(ctx context.Context, account jid.JID, password string) error
	SetPassword(ctx context.Context, account jid.JID, password string) error
	Delete(ctx context.Context, account jid.JID) error
	Count(ctx context.Context, domain string) (int, error)
}

// Sessions is the part of the router the commands use.
type Sessions interface {
	IsLocalDomain(domain string) bool
	Resources(bare string) []*router.Resource
	Online() []string // full JIDs of the bound resources
}

// Options configure the commands.
type Options struct {
	Accounts Accounts
	Sessions Sessions
	Logger   *slog.Logger
}

// Commands returns the admin commands, to be added to an adhoc.Service.
func Commands(opts Options) ([]adhoc.Command, error) {
	if opts.Accounts == nil || opts.Sessions == nil {
		return nil, errors.New("admin commands: Accounts and Sessions are required")
	}
	c := &commands{Options: opts}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return []adhoc.Command{
		{Node: NodeAddUser, Name: "Add a User", AdminOnly: true, Handler: adhoc.HandlerFunc(c.addUser)},
		{Node: NodeDeleteUser, Name: "Delete a User", AdminOnly: true, Handler: adhoc.HandlerFunc(c.deleteUser)},
		{Node: NodeChangeUserPassword, Name: "Change User Password", AdminOnly: true, Handler: adhoc.HandlerFunc(c.changePassword)},
		{Node: NodeGetOnlineUsersList, Name: "Get List of Online Users", AdminOnly: true, Handler: adhoc.HandlerFunc(c.onlineList)},
		{Node: NodeGetOnlineUsersNum, Name: "Get Number of Online Users", AdminOnly: true, Handler: adhoc.HandlerFunc(c.onlineNum)},
		{Node: NodeGetRegisteredUsersNum, Name: "Get Number of Registered Users", AdminOnly: true, Handler: adhoc.HandlerFunc(c.registeredNum)},
	}, nil
}

type commands struct {
	Options
}

// formType is the hidden field every XEP-0133 form carries.
func formType() dataform.Field {
	return dataform.Field{Var: dataform.FormTypeVar, Type: dataform.Hidden, Values: []string{NS}}
}

// ask answers the first stage with a form to fill in and 'complete' as the only way on.
func ask(title, instructions string, fields ...dataform.Field) *adhoc.Response {
	return &adhoc.Response{
		Form: &dataform.Form{Type: dataform.TypeForm, Title: title, Instructions: []string{instructions},
			Fields: append([]dataform.Field{formType()}, fields...)},
		Actions: []string{adhoc.ActionComplete},
	}
}

// submitted returns the form to act on, or nil when the stage should ask for it.
func submitted(req *adhoc.Request) (*dataform.Form, error) {
	if req.Form == nil {
		if req.Stage == 0 {
			return nil, nil
		}
		return nil, stanza.New(stanza.BadRequest, "the form is missing")
	}
	if ft := req.Form.FormType(); ft != "" && ft != NS {
		return nil, stanza.New(stanza.BadRequest, "the form's FORM_TYPE is "+ft+", want "+NS)
	}
	return req.Form, nil
}

// account reads one account JID from a form value: a bare JID with a localpart on a served domain.
func (c *commands) account(v string) (jid.JID, error) {
	a, err := accounts.ParseAccount(strings.TrimSpace(v))
	if err != nil {
		return jid.JID{}, stanza.New(stanza.JIDMalformed, err.Error())
	}
	if !c.Sessions.IsLocalDomain(a.Domain()) {
		return jid.JID{}, stanza.New(stanza.NotAcceptable, a.Domain()+" is not served here")
	}
	return a, nil
}

func done(text string) *adhoc.Response {
	return &adhoc.Response{Notes: []adhoc.Note{{Type: adhoc.NoteInfo, Text: text}}}
}

func (c *commands) addUser(ctx context.Context, req *adhoc.Request) (*adhoc.Response, error) {
	f, err := submitted(req)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return ask("Adding a User", "Fill out this form to add a user.",
			dataform.Field{Var: "accountjid", Type: dataform.JIDSingle, Label: "The Jabber ID for the account to be added", Required: true},
			dataform.Field{Var: "password", Type: dataform.TextPrivate, Label: "The password for this account", Required: true},
			dataform.Field{Var: "password-verify", Type: dataform.TextPrivate, Label: "Retype password", Required: true},
		), nil
	}
	a, err := c.account(f.Value("accountjid"))
	if err != nil {
		return nil, err
	}
	pw := f.Value("password")
	if pw == "" {
		return nil, stanza.New(stanza.NotAcceptable, "the password is empty")
	}
	if f.Field("password-verify") != nil && f.Value("password-verify") != pw {
		return nil, stanza.New(stanza.NotAcceptable, "the passwords differ")
	}
	switch err := c.Accounts.Create(ctx, a, pw); {
	case errors.Is(err, accounts.ErrExists):
		return nil, stanza.New(stanza.Conflict, a.String()+" exists")
	case err != nil:
		return nil, err
	}
	c.Logger.Info("account added by admin", "account", a.String(), "admin", req.From.Bare().String())
	return done("Added " + a.String() + "."), nil
}

func (c *commands) deleteUser(ctx context.Context, req *adhoc.Request) (*adhoc.Response, error) {
	f, err := submitted(req)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return ask("Deleting a User", "Fill out this form to delete a user.",
			dataform.Field{Var: "accountjids", Type: dataform.JIDMulti, Label: "The Jabber ID(s) to delete", Required: true},
		), nil
	}
	var list []jid.JID
	for _, v := range f.Values("accountjids") {
		a, err := c.account(v)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(list, a) {
			list = append(list, a)
		}
	}
	if len(list) == 0 {
		return nil, stanza.New(stanza.NotAcceptable, "no account given")
	}
	var deleted, missing []string
	for _, a := range list {
		switch err := c.Accounts.Delete(ctx, a); {
		case errors.Is(err, accounts.ErrNotFound):
			missing = append(missing, a.String())
			continue
		case err != nil:
			return nil, err
		}
		deleted = append(deleted, a.String())
		c.Logger.Info("account deleted by admin", "account", a.String(), "admin", req.From.Bare().String())
		// Its sessions are authenticated as an account that no longer exists.
		for _, res := range c.Sessions.Resources(a.String()) {
			res.Close("not-authorized", "the account was deleted")
		}
	}
	if len(deleted) == 0 {
		return nil, stanza.New(stanza.ItemNotFound, "no such account: "+strings.Join(missing, ", "))
	}
	resp := done("Deleted " + strings.Join(deleted, ", ") + ".")
	if len(missing) > 0 {
		resp.Notes = append(resp.Notes, adhoc.Note{Type: adhoc.NoteWarn, Text: "No such account: " + strings.Join(missing, ", ") + "."})
	}
	return resp, nil
}

func (c *commands) changePassword(ctx context.Context, req *adhoc.Request) (*adhoc.Response, error) {
	f, err := submitted(req)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return ask("Changing a User Password", "Fill out this form to change a user's password.",
			dataform.Field{Var: "accountjid", Type: dataform.JIDSingle, Label: "The Jabber ID for this account", Required: true},
			dataform.Field{Var: "password", Type: dataform.TextPrivate, Label: "The password for this account", Required: true},
		), nil
	}
	a, err := c.account(f.Value("accountjid"))
	if err != nil {
		return nil, err
	}
	pw := f.Value("password")
	if pw == "" {
		return nil, stanza.New(stanza.NotAcceptable, "the password is empty")
	}
	switch err := c.Accounts.SetPassword(ctx, a, pw); {
	case errors.Is(err, accounts.ErrNotFound):
		return nil, stanza.New(stanza.ItemNotFound, "no such account: "+a.String())
	case err != nil:
		return nil, err
	}
	c.Logger.Info("password changed by admin", "account", a.String(), "admin", req.From.Bare().String())
	return done("Changed the password of " + a.String() + "."), nil
}

// maxItemsChoices are the page sizes XEP-0133 offers for lists.
var maxItemsChoices = []string{"25", "50", "75", "100", "150", "200", "none"}

// online returns the full JIDs of the sessions on domain.
func (c *commands) online(domain string) []string {
	var out []string
	for _, full := range c.Sessions.Online() {
		j, err := jid.Parse(full)
		if err == nil && j.Domain() == domain {
			out = append(out, full)
		}
	}
	return out
}

func (c *commands) onlineList(_ context.Context, req *adhoc.Request) (*adhoc.Response, error) {
	f, err := submitted(req)
	if err != nil {
		return nil, err
	}
	if f == nil {
		opts := make([]dataform.Option, len(maxItemsChoices))
		for i, v := range maxItemsChoices {
			opts[i] = dataform.Option{Label: v, Value: v}
		}
		return ask("Requesting List of Online Users", "How many users should be listed at most?",
			dataform.Field{Var: "max_items", Type: dataform.ListSingle, Label: "Maximum number of items to show", Values: []string{"25"}, Options: opts},
		), nil
	}
	limit := -1
	if v := strings.TrimSpace(f.Value("max_items")); v != "" && v != "none" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, stanza.New(stanza.NotAcceptable, "max_items is a positive number or none")
		}
		limit = n
	}
	// Users, not sessions: one line per account however many resources it has bound.
	var users []string
	for _, full := range c.online(req.To.Domain()) {
		bare, _, _ := strings.Cut(full, "/")
		users = append(users, bare)
	}
	slices.Sort(users)
	users = slices.Compact(users)
	if limit >= 0 && len(users) > limit {
		users = users[:limit]
	}
	return &adhoc.Response{Form: &dataform.Form{Type: dataform.TypeResult, Fields: []dataform.Field{
		formType(),
		{Var: "onlineuserjids", Type: dataform.JIDMulti, Label: "The list of all online users", Values: users},
	}}}, nil
}

func (c *commands) onlineNum(_ context.Context, req *adhoc.Request) (*adhoc.Response, error) {
	// Sessions, not users, as ejabberd counts them: the figure an operator compares with the load.
	n := len(c.online(req.To.Domain()))
	return &adhoc.Response{Form: &dataform.Form{Type: dataform.TypeResult, Fields: []dataform.Field{
		formType(),
		{Var: "onlineusersnum", Label: "The number of online users", Values: []string{strconv.Itoa(n)}},
	}}}, nil
}

func (c *commands) registeredNum(ctx context.Context, req *adhoc.Request) (*adhoc.Response, error) {
	n, err := c.Accounts.Count(ctx, req.To.Domain())
	if err != nil {
		return nil, fmt.Errorf("count accounts of %s: %w", req.To.Domain(), err)
	}
	return &adhoc.Response{Form: &dataform.Form{Type: dataform.TypeResult, Fields: []dataform.Field{
		formType(),
		{Var: "registeredusersnum", Label: "The number of registered users", Values: []string{strconv.Itoa(n)}},
	}}}, nil
}
