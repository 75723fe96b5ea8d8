-- The same schema as the SQLite backend's 0002_documents.sql, in
-- PostgreSQL's types.
--
-- Per-account XML documents: XEP-0049 private XML (kind 'private', key the
-- element's "{namespace}name") and XEP-0054 vCards (kind 'vcard', key '').
-- The bytes are kept as the client sent them, so that what is read back is
-- byte for byte what was stored (XEP-0153 avatar hashes, signatures).
CREATE TABLE documents (
	owner   text        COLLATE "C" NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
	kind    text        COLLATE "C" NOT NULL,
	key     text        COLLATE "C" NOT NULL,
	xml     bytea       NOT NULL,
	updated timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (owner, kind, key)
);
