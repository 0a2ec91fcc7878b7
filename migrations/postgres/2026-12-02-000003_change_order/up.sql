-- Incremental sync reads bookings in the order of their changes. A change's place is its
-- transaction's id (xid8, which never wraps): a transaction that commits late has the
-- lower id, and readers take only changes below the oldest transaction still running
-- (pg_snapshot_xmin), so a late commit is read once it lands and never passed over.
ALTER TABLE bookings ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION bookings_change_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END $$;

CREATE TRIGGER bookings_change_seq BEFORE INSERT OR UPDATE ON bookings
    FOR EACH ROW EXECUTE FUNCTION bookings_change_seq();

UPDATE bookings SET change_seq = 0;
CREATE INDEX bookings_change_order ON bookings (change_seq, id);
