DROP TRIGGER availability_claims ON booking_slots;
DROP TRIGGER availability_slot_delete ON slots;
DROP TRIGGER availability_slot_update ON slots;
DROP TRIGGER availability_slot_insert ON slots;
DROP FUNCTION availability_claim_changed();
DROP FUNCTION availability_slots_changed();
DROP FUNCTION availability_bump(BIGINT[], BIGINT[]);
DROP FUNCTION availability_week(TIMESTAMP);
DROP TABLE availability_week_marks;

CREATE TABLE availability_marks (
    dermatologist_id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);

CREATE FUNCTION availability_bump(ids BIGINT[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO availability_marks (dermatologist_id, version)
        SELECT DISTINCT id, 1 FROM unnest(ids) AS id WHERE id IS NOT NULL ORDER BY id
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = availability_marks.version + 1;
$$;

CREATE OR REPLACE FUNCTION availability_catalogue_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM availability_bump(ARRAY[0::BIGINT]);
    RETURN NULL;
END $$;

CREATE FUNCTION availability_slots_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM availability_bump(ARRAY(SELECT dermatologist_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM availability_bump(ARRAY(SELECT dermatologist_id FROM old_rows));
    ELSE
        PERFORM availability_bump(ARRAY(
            SELECT dermatologist_id FROM new_rows UNION SELECT dermatologist_id FROM old_rows));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION availability_claim_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids BIGINT[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY[NEW.slot_id];
    ELSIF TG_OP = 'DELETE' THEN
        ids := ARRAY[OLD.slot_id];
    ELSE
        ids := ARRAY[NEW.slot_id, OLD.slot_id];
    END IF;
    PERFORM availability_bump(ARRAY(SELECT dermatologist_id FROM slots WHERE id = ANY (ids)));
    RETURN NULL;
END $$;

CREATE TRIGGER availability_slot_insert AFTER INSERT ON slots
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION availability_slots_changed();
CREATE TRIGGER availability_slot_update AFTER UPDATE ON slots
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION availability_slots_changed();
CREATE TRIGGER availability_slot_delete AFTER DELETE ON slots
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION availability_slots_changed();
CREATE CONSTRAINT TRIGGER availability_claims AFTER INSERT OR UPDATE OR DELETE ON booking_slots
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION availability_claim_changed();
