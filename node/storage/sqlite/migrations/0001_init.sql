-- Accounts. The bare JID is the key every other table refers to, so that
-- the login path (credential, roster, offline count) reads one index each
-- without a join. roster_version lives here because it is per owner and
-- must survive the roster becoming empty.
CREATE TABLE users (
	jid            TEXT    NOT NULL PRIMARY KEY,
	domain         TEXT    NOT NULL,
	roster_version INTEGER NOT NULL DEFAULT 0,
	created        INTEGER NOT NULL -- unix milliseconds
) WITHOUT ROWID;

CREATE INDEX users_domain ON users (domain, jid);

-- One SCRAM credential per user and hash (RFC 5802).
CREATE TABLE credentials (
	jid        TEXT    NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
	hash       TEXT    NOT NULL CHECK (hash IN ('SHA-1', 'SHA-256', 'SHA-512')),
	salt       BLOB    NOT NULL,
	iterations INTEGER NOT NULL CHECK (iterations > 0),
	stored_key BLOB    NOT NULL,
	server_key BLOB    NOT NULL,
	PRIMARY KEY (jid, hash)
) WITHOUT ROWID;

-- Roster items (RFC 6121 §2.1). groups holds the group names joined by
-- U+001F (a control character XML cannot carry, so no name contains it):
-- the roster is read whole at every login, and splitting one string is far
-- cheaper than a join or decoding JSON.
CREATE TABLE roster_items (
	owner             TEXT    NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
	contact           TEXT    NOT NULL,
	name              TEXT    NOT NULL DEFAULT '',
	groups            TEXT    NOT NULL DEFAULT '',
	subscription      TEXT    NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
	pending_out       INTEGER NOT NULL DEFAULT 0,
	pending_in        INTEGER NOT NULL DEFAULT 0,
	pending_in_stanza BLOB,
	pre_approved      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (owner, contact)
) WITHOUT ROWID;

-- Offline messages (XEP-0160). AUTOINCREMENT so that an id is never reused
-- after the newest message is deleted: a client's "delete up to id" must not
-- hit a message stored later.
CREATE TABLE offline_messages (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	owner  TEXT    NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
	stanza BLOB    NOT NULL,
	stored INTEGER NOT NULL -- unix milliseconds
);

CREATE INDEX offline_messages_owner ON offline_messages (owner, id);

-- Cluster discovery (DESIGN §3; Tigase's tig_cluster_nodes).
CREATE TABLE cluster_nodes (
	hostname    TEXT    NOT NULL PRIMARY KEY,
	secondary   TEXT    NOT NULL DEFAULT '',
	password    TEXT    NOT NULL,
	port        INTEGER NOT NULL,
	last_update INTEGER NOT NULL, -- unix milliseconds, the database's clock
	cpu_usage   REAL    NOT NULL DEFAULT 0,
	mem_usage   REAL    NOT NULL DEFAULT 0
) WITHOUT ROWID;
