-- Availability marks per dermatologist and week, not per dermatologist: a booking then
-- makes each instance's index read that dermatologist's free slots of one week again,
-- not of the whole horizon. A week is the slot's start in whole weeks since 1970-01-01
-- (UTC, the stored time), which the application computes the same way. Row (week 0,
-- dermatologist 0) stands for the catalogue. The primary key leads with the week, so the
-- index reads only the weeks still ahead. The table has a new name so that an instance of
-- an earlier version, which reads one mark per dermatologist from `availability_marks`,
-- fails its searches rather than misses changes silently: replace those instances once
-- this has migrated.
DROP TRIGGER availability_slot_insert ON slots;
DROP TRIGGER availability_slot_update ON slots;
DROP TRIGGER availability_slot_delete ON slots;
DROP TRIGGER availability_claims ON booking_slots;
DROP FUNCTION availability_slots_changed();
DROP FUNCTION availability_claim_changed();
DROP FUNCTION availability_bump(BIGINT[]);
DROP TABLE availability_marks;

CREATE TABLE availability_week_marks (
    week BIGINT NOT NULL,
    dermatologist_id BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (week, dermatologist_id)
);

CREATE FUNCTION availability_week(starts_at TIMESTAMP) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT floor(extract(epoch FROM starts_at) / 604800)::BIGINT;
$$;

-- Before it bumps a dermatologist's marks, a transaction takes that dermatologist's
-- advisory lock (kind 6 of the application's keys, `db::Exclusive`), in id order, and
-- holds it to its end: one transaction at a time then bumps any of a dermatologist's
-- weeks, as when there was one mark per dermatologist, so two transactions cannot lock
-- one dermatologist's weeks in opposite orders (a reschedule's claims bump at commit in
-- the order they were made, a course's in time order). PL/pgSQL, not SQL: it keeps its
-- statements' plans for the session, where an SQL function that writes is planned again
-- at every call.
CREATE FUNCTION availability_bump(ids BIGINT[], weeks BIGINT[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock((1145176070::BIGINT << 32) | (d & 4294967295))
        FROM (SELECT DISTINCT d FROM unnest(ids) AS d WHERE d IS NOT NULL ORDER BY d) AS t;
    INSERT INTO availability_week_marks (week, dermatologist_id, version)
        SELECT DISTINCT w, d, 1 FROM unnest(weeks, ids) AS t(w, d) WHERE d IS NOT NULL ORDER BY w, d
        ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = availability_week_marks.version + 1;
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
-- session keeps. The dermatologist's advisory lock first, as in availability_bump.
CREATE FUNCTION availability_claim_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_advisory_xact_lock((1145176070::BIGINT << 32) | (dermatologist_id & 4294967295))
            FROM slots WHERE id = NEW.slot_id;
        INSERT INTO availability_week_marks (week, dermatologist_id, version)
            SELECT availability_week(starts_at), dermatologist_id, 1 FROM slots WHERE id = NEW.slot_id
            ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = availability_week_marks.version + 1;
    END IF;
    IF TG_OP <> 'INSERT' AND (TG_OP = 'DELETE' OR OLD.slot_id <> NEW.slot_id) THEN
        PERFORM pg_advisory_xact_lock((1145176070::BIGINT << 32) | (dermatologist_id & 4294967295))
            FROM slots WHERE id = OLD.slot_id;
        INSERT INTO availability_week_marks (week, dermatologist_id, version)
            SELECT availability_week(starts_at), dermatologist_id, 1 FROM slots WHERE id = OLD.slot_id
            ON CONFLICT (week, dermatologist_id) DO UPDATE SET version = availability_week_marks.version + 1;
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
