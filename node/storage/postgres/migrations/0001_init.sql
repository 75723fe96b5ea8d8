-- The same schema as the SQLite backend's 0001_init.sql, in PostgreSQL's
-- types. Keep the two in step: one logical schema, two dialects.
--
-- Addresses are COLLATE "C": they are compared byte for byte (the caller
-- prepared them), sorted the way SQLite sorts them, and C comparisons are
-- the cheapest an index can make.

-- Accounts. The bare JID is the key every other table refers to, so that
-- the login path (credential, roster, offline count) reads one index each
-- without a join. roster_version lives here because it is per owner and
-- must survive the roster becoming empty.
CREATE TABLE users (
	jid            text        COLLATE "C" NOT NULL PRIMARY KEY,
	domain         text        COLLATE "C" NOT NULL,
	roster_version bigint      NOT NULL DEFAULT 0,
	created        timestamptz NOT NULL DEFAULT now()
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

-- Roster items (RFC 6121 §2.1): one row per item, read whole at login.
CREATE TABLE roster_items (
	owner             text    COLLATE "C" NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
	contact           text    COLLATE "C" NOT NULL,
	name              text    NOT NULL DEFAULT '',
	groups            text[]  NOT NULL DEFAULT '{}',
	subscription      text    NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
	pending_out       boolean NOT NULL DEFAULT false,
	pending_in        boolean NOT NULL DEFAULT false,
	pending_in_stanza bytea,
	pre_approved      boolean NOT NULL DEFAULT false,
	PRIMARY KEY (owner, contact)
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
