-- The database's own guards against double booking, behind booking_slots' unique slot_id.
-- A bug in the slot logic then fails the transaction (a 409) instead of booking one
-- dermatologist twice. btree_gist lets one exclusion constraint compare the dermatologist
-- by equality and the time range by overlap; it is a trusted extension (PostgreSQL 13+),
-- so a role that owns the database may create it. Migrations run under an advisory lock,
-- so several instances starting at once create it once.
-- Adding a constraint locks the table: give up rather than stall bookings behind a long
-- transaction during a rolling deploy (the next start tries again).
SET LOCAL lock_timeout = '30s';

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- No appointment is shorter than nothing or longer than a day (treatments last at most
-- 600 minutes); SQLite's overlap trigger relies on the bound to stay an index range scan.
ALTER TABLE bookings ADD CONSTRAINT bookings_time_range
    CHECK (ends_at > starts_at AND ends_at <= starts_at + INTERVAL '1 day');

-- Two live bookings (any status but cancelled) of one dermatologist never overlap. An
-- existing overlap (from before this guard) fails the migration, naming both rows: cancel
-- or move one of them and start again.
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
    EXCLUDE USING gist (dermatologist_id WITH =, tsrange(starts_at, ends_at) WITH &&)
    WHERE (status <> 'cancelled');

-- A live booking holds at least one slot, a cancelled one none. Checked at commit, since
-- a new booking is inserted before its slots are claimed in the same transaction.
CREATE FUNCTION bookings_hold_slots() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    checked BIGINT;
    booking_status TEXT;
    held BIGINT;
BEGIN
    IF TG_TABLE_NAME = 'bookings' THEN
        checked := NEW.id;
    ELSIF TG_OP = 'DELETE' THEN
        checked := OLD.booking_id;
    ELSE
        checked := NEW.booking_id;
    END IF;
    SELECT status INTO booking_status FROM bookings WHERE id = checked;
    IF NOT FOUND THEN
        RETURN NULL; -- the booking itself was deleted, and its slots with it
    END IF;
    SELECT count(*) INTO held FROM booking_slots WHERE booking_id = checked;
    IF booking_status = 'cancelled' AND held > 0 THEN
        RAISE EXCEPTION 'cancelled booking % still holds % slots', checked, held
            USING ERRCODE = 'check_violation', CONSTRAINT = 'bookings_hold_slots';
    ELSIF booking_status <> 'cancelled' AND held = 0 THEN
        RAISE EXCEPTION 'live booking % holds no slot', checked
            USING ERRCODE = 'check_violation', CONSTRAINT = 'bookings_hold_slots';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER bookings_hold_slots
    AFTER INSERT OR UPDATE OF status ON bookings
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION bookings_hold_slots();

CREATE CONSTRAINT TRIGGER booking_slots_held
    AFTER INSERT OR DELETE ON booking_slots
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION bookings_hold_slots();
