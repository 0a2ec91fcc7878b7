DELETE FROM audit_log WHERE actor_kind = 'api_key';
ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_kind_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_kind_check
    CHECK (actor_kind IN ('staff', 'patient', 'system'));
ALTER TABLE audit_log DROP COLUMN actor_api_key_id;
DROP TABLE api_keys;
