-- What availability is computed from changes here, whoever changes it: each instance keeps
-- an in-memory index of free slots and, by comparing these versions, reloads only the
-- dermatologists that changed. Row 0 stands for the catalogue (treatments, dermatologists
-- and who performs what). Triggers, not application code, keep it, so no write path can
-- forget to. They run once per statement (a year of generated slots is one bump per
-- dermatologist), and bump in dermatologist order, so two transactions touching the same
-- dermatologists take their rows' locks in the same order.
CREATE TABLE availability_marks (
    dermatologist_id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);

CREATE FUNCTION availability_bump(ids BIGINT[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO availability_marks (dermatologist_id, version)
        SELECT DISTINCT id, 1 FROM unnest(ids) AS id WHERE id IS NOT NULL ORDER BY id
        ON CONFLICT (dermatologist_id) DO UPDATE SET version = availability_marks.version + 1;
$$;

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

CREATE FUNCTION availability_claims_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM availability_bump(ARRAY(
            SELECT s.dermatologist_id FROM new_rows c JOIN slots s ON s.id = c.slot_id));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM availability_bump(ARRAY(
            SELECT s.dermatologist_id FROM old_rows c JOIN slots s ON s.id = c.slot_id));
    ELSE
        PERFORM availability_bump(ARRAY(
            SELECT s.dermatologist_id FROM new_rows c JOIN slots s ON s.id = c.slot_id
            UNION SELECT s.dermatologist_id FROM old_rows c JOIN slots s ON s.id = c.slot_id));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION availability_catalogue_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM availability_bump(ARRAY[0::BIGINT]);
    RETURN NULL;
END $$;

CREATE TRIGGER availability_slot_insert AFTER INSERT ON slots
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION availability_slots_changed();
CREATE TRIGGER availability_slot_update AFTER UPDATE ON slots
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION availability_slots_changed();
CREATE TRIGGER availability_slot_delete AFTER DELETE ON slots
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION availability_slots_changed();
CREATE TRIGGER availability_claim_insert AFTER INSERT ON booking_slots
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION availability_claims_changed();
CREATE TRIGGER availability_claim_update AFTER UPDATE ON booking_slots
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION availability_claims_changed();
CREATE TRIGGER availability_claim_delete AFTER DELETE ON booking_slots
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION availability_claims_changed();
CREATE TRIGGER availability_treatments AFTER INSERT OR UPDATE OR DELETE ON treatments
    FOR EACH STATEMENT EXECUTE FUNCTION availability_catalogue_changed();
CREATE TRIGGER availability_dermatologists AFTER INSERT OR UPDATE OR DELETE ON dermatologists
    FOR EACH STATEMENT EXECUTE FUNCTION availability_catalogue_changed();
CREATE TRIGGER availability_performers AFTER INSERT OR UPDATE OR DELETE ON dermatologist_treatments
    FOR EACH STATEMENT EXECUTE FUNCTION availability_catalogue_changed();
