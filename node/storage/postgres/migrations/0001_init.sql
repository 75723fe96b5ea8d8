-- The same schema as the SQLite backend's 0001_init.sql, in PostgreSQL's
-- types. Keep the two in step: one logical schema, two dialects.
--
-- Addresses are COLLATE "C": they are compared byte for byte (the caller
-- prepared them), sorted the way SQLite sorts them, and C comparisons are
-- the cheapest an index can make.

-- Accounts. The bare JID is the key every other table refers to, so that
-- the login path (credential, roster, offline count) reads one index each
-- without a join.
CREATE TABLE users (
	jid     text        COLLATE "C" NOT NULL PRIMARY KEY,
	domain  text        COLLATE "C" NOT NULL,
	created timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX users_domain ON users (domain, jid);

-- One SCRAM credential per user and hash (RFC 5802).
CREATE TABLE credentials (
	jid        text    COLLATE "C" NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
	hash       text    NOT NULL CHECK (hash IN ('SHA-1', 'SHA-256', 'SHA-512')),
	salt       bytea   NOT NULL,
	iterations integer NOT NULL CHECK (iterations > 0),
	stored_key bytea   NOT NULL,
	server_key bytea   NOT NULL,
	PRIMARY KEY (jid, hash)
);

-- Rosters (RFC 6121 §2.1), one row per owner: items holds every item,
-- encoded by package rostercodec, and version the roster version (RFC 6121
-- §2.6), in the same row so that a fetch reads both from one snapshot.
-- Every login reads the roster; one row costs a fraction of one row per
-- item. A row is created by the first change; no row means version 0.
CREATE TABLE rosters (
	owner   text   COLLATE "C" NOT NULL PRIMARY KEY REFERENCES users (jid) ON DELETE CASCADE,
	version bigint NOT NULL,
	items   bytea  NOT NULL
);

-- Offline messages (XEP-0160). A sequence never reuses an id, so a client's
-- "delete up to id" cannot hit a message stored later.
CREATE TABLE offline_messages (
	id     bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	owner  text        COLLATE "C" NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
	stanza bytea       NOT NULL,
	stored timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX offline_messages_owner ON offline_messages (owner, id);

-- Cluster discovery (DESIGN §3; Tigase's tig_cluster_nodes).
CREATE TABLE cluster_nodes (
	hostname    text             COLLATE "C" NOT NULL PRIMARY KEY,
	secondary   text             NOT NULL DEFAULT '',
	password    text             NOT NULL,
	port        integer          NOT NULL,
	last_update timestamptz      NOT NULL DEFAULT now(),
	cpu_usage   double precision NOT NULL DEFAULT 0,
	mem_usage   double precision NOT NULL DEFAULT 0
);
