-- Keys for integrations (sync, webhooks' administration, FHIR): machine work without a
-- person's session. Only the key's hash is kept; the prefix names it in lists.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    -- 'read', or 'bookings': read, and write bookings.
    scope TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_by BIGINT NOT NULL REFERENCES staff (id),
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);

-- A change made through a key names the key, and the staff member who created it.
-- SQLite cannot change a CHECK in place: the table is rebuilt, its rows and ids kept.
CREATE TABLE audit_log_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TIMESTAMP NOT NULL,
    actor_kind TEXT NOT NULL CHECK (actor_kind IN ('staff', 'patient', 'system', 'api_key')),
    actor_staff_id BIGINT,
    entity TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    action TEXT NOT NULL,
    before_status TEXT,
    after_status TEXT,
    details TEXT,
    actor_api_key_id BIGINT
);
INSERT INTO audit_log_new (id, at, actor_kind, actor_staff_id, entity, entity_id, action,
                           before_status, after_status, details)
SELECT id, at, actor_kind, actor_staff_id, entity, entity_id, action, before_status,
       after_status, details
FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, at);
