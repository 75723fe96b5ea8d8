-- Per-account XML documents: XEP-0049 private XML (kind 'private', key the
-- element's "{namespace}name") and XEP-0054 vCards (kind 'vcard', key '').
-- The bytes are kept as the client sent them, so that what is read back is
-- byte for byte what was stored (XEP-0153 avatar hashes, signatures).
--
-- A rowid table, unlike the others: a document may reach 64 KiB, and
-- WITHOUT ROWID tables are meant for rows far smaller than a page.
CREATE TABLE documents (
	owner   TEXT    NOT NULL REFERENCES users (jid) ON DELETE CASCADE,
	kind    TEXT    NOT NULL,
	key     TEXT    NOT NULL,
	xml     BLOB    NOT NULL,
	updated INTEGER NOT NULL, -- unix milliseconds
	PRIMARY KEY (owner, kind, key)
);
