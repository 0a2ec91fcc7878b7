-- Availability marks per dermatologist and week, not per dermatologist: a booking then
-- makes each instance's index read that dermatologist's free slots of one week again,
-- not of the whole horizon. A week is the slot's start in whole weeks since 1970-01-01
-- (UTC, the stored time), which the application computes the same way. Row (week 0,
-- dermatologist 0) stands for the catalogue. The primary key leads with the week, so the
-- index reads only the weeks still ahead.
DROP TRIGGER availability_slot_insert ON slots;
DROP TRIGGER availability_slot_update ON slots;
DROP TRIGGER availability_slot_delete ON slots;
DROP TRIGGER availability_claims ON booking_slots;
DROP FUNCTION availability_slots_changed();
DROP FUNCTION availability_claim_changed();
DROP FUNCTION availability_bump(BIGINT[]);
DROP TABLE availability_marks;

CREATE TABLE availability_marks (
    week BIGINT NOT NULL,
    dermatologist_id BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (week, dermatologist_id)
);

CREATE FUNCTION availability_week(starts_at TIMESTAMP) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT floor(extract(epoch FROM starts_at) / 604800)::BIGINT;
$$;

-- Bumps in (week, dermatologist) order, so two transactions never wait on each other's
-- marks in opposite orders. PL/pgSQL, not SQL: it keeps its statement's plan for the
-- session, where an SQL function that writes is planned again at every call.
CREATE FUNCTION availability_bump(ids BIGINT[], weeks BIGINT[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO availability_marks (week, dermatologist_id, version)
        SELECT DISTINCT w, d, 1 FROM unnest(weeks, ids) AS t(w, d) WHERE d IS NOT NULL ORDER BY w, d
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = availability_marks.version + 1;
END $$;

CREATE FUNCTION availability_slots_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids BIGINT[];
    weeks BIGINT[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(dermatologist_id), array_agg(availability_week(starts_at))
            INTO ids, weeks FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(dermatologist_id), array_agg(availability_week(starts_at))
            INTO ids, weeks FROM old_rows;
    ELSE
        SELECT array_agg(d), array_agg(w) INTO ids, weeks FROM (
            SELECT dermatologist_id AS d, availability_week(starts_at) AS w FROM new_rows
            UNION SELECT dermatologist_id, availability_week(starts_at) FROM old_rows) AS changed;
    END IF;
    PERFORM availability_bump(ids, weeks);
    RETURN NULL;
END $$;

-- Claims bump at commit (deferred), as before: a booking holds its marks only for the
-- moment of its commit. One claim is one slot: looked up by a single id, whose plan the
-- session keeps.
CREATE FUNCTION availability_claim_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO availability_marks (week, dermatologist_id, version)
            SELECT availability_week(starts_at), dermatologist_id, 1 FROM slots WHERE id = NEW.slot_id
            ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = availability_marks.version + 1;
    END IF;
    IF TG_OP <> 'INSERT' AND (TG_OP = 'DELETE' OR OLD.slot_id <> NEW.slot_id) THEN
        INSERT INTO availability_marks (week, dermatologist_id, version)
            SELECT availability_week(starts_at), dermatologist_id, 1 FROM slots WHERE id = OLD.slot_id
            ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = availability_marks.version + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION availability_catalogue_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM availability_bump(ARRAY[0::BIGINT], ARRAY[0::BIGINT]);
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
