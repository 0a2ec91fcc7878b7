DROP TRIGGER IF EXISTS booking_slots_held ON booking_slots;
DROP TRIGGER IF EXISTS bookings_hold_slots ON bookings;
DROP FUNCTION IF EXISTS bookings_hold_slots();
ALTER TABLE bookings DROP CONSTRAINT IF EXISTS bookings_no_overlap;
ALTER TABLE bookings DROP CONSTRAINT IF EXISTS bookings_time_range;
-- btree_gist stays: other objects of the database may have come to use it.
