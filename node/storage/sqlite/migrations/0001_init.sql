-- Accounts. The bare JID is the key every other table refers to, so that
-- the login path (credential, roster, offline count) reads one index each
-- without a join.
CREATE TABLE users (
	jid     TEXT    NOT NULL PRIMARY KEY,
	domain  TEXT    NOT NULL,
	created INTEGER NOT NULL -- unix milliseconds
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

-- Rosters (RFC 6121 §2.1), one row per owner: items holds every item,
-- encoded by package rostercodec, and version the roster version (RFC 6121
-- §2.6), in the same row so that a fetch reads both from one snapshot.
-- Every login reads the roster; one row of two columns costs a fraction of
-- one row of nine columns per item.
-- A row is created by the first change; no row means version 0, no items.
CREATE TABLE rosters (
	owner   TEXT    NOT NULL PRIMARY KEY REFERENCES users (jid) ON DELETE CASCADE,
	version INTEGER NOT NULL,
	items   BLOB    NOT NULL
);

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
