DELETE FROM audit_log WHERE actor_kind = 'api_key';
ALTER TABLE audit_log DROP COLUMN actor_api_key_id;
DROP TABLE api_keys;
