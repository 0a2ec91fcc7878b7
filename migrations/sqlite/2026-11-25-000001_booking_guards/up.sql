-- The database's own guard against double booking, behind booking_slots' unique slot_id:
-- SQLite has no exclusion constraints, so triggers refuse a live booking (any status but
-- cancelled) whose time overlaps another live booking of the same dermatologist. The
-- message starts with `booking_overlap`, which the error mapping turns into a 409.
-- Bookings last at most a day (treatments at most 600 minutes), which bounds the scan to
-- one day of the (dermatologist_id, starts_at) index.

CREATE TRIGGER bookings_time_range_insert
BEFORE INSERT ON bookings
WHEN NOT (NEW.ends_at > NEW.starts_at AND NEW.ends_at <= datetime(NEW.starts_at, '+1 day'))
BEGIN
    SELECT RAISE(ABORT, 'booking_time_range: a booking ends after it starts, within a day');
END;

CREATE TRIGGER bookings_time_range_update
BEFORE UPDATE OF starts_at, ends_at ON bookings
WHEN NOT (NEW.ends_at > NEW.starts_at AND NEW.ends_at <= datetime(NEW.starts_at, '+1 day'))
BEGIN
    SELECT RAISE(ABORT, 'booking_time_range: a booking ends after it starts, within a day');
END;

CREATE TRIGGER bookings_no_overlap_insert
BEFORE INSERT ON bookings
WHEN NEW.status <> 'cancelled' AND EXISTS (
    SELECT 1 FROM bookings AS other
    WHERE other.dermatologist_id = NEW.dermatologist_id
      AND other.status <> 'cancelled'
      AND other.starts_at < NEW.ends_at
      AND other.starts_at > datetime(NEW.starts_at, '-1 day')
      AND other.ends_at > NEW.starts_at
)
BEGIN
    SELECT RAISE(ABORT, 'booking_overlap: two live bookings of one dermatologist overlap');
END;

CREATE TRIGGER bookings_no_overlap_update
BEFORE UPDATE OF dermatologist_id, starts_at, ends_at, status ON bookings
WHEN NEW.status <> 'cancelled' AND EXISTS (
    SELECT 1 FROM bookings AS other
    WHERE other.id <> NEW.id
      AND other.dermatologist_id = NEW.dermatologist_id
      AND other.status <> 'cancelled'
      AND other.starts_at < NEW.ends_at
      AND other.starts_at > datetime(NEW.starts_at, '-1 day')
      AND other.ends_at > NEW.starts_at
)
BEGIN
    SELECT RAISE(ABORT, 'booking_overlap: two live bookings of one dermatologist overlap');
END;
