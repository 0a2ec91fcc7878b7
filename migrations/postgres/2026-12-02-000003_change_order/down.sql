DROP TRIGGER bookings_change_seq ON bookings;
DROP FUNCTION bookings_change_seq();
ALTER TABLE bookings DROP COLUMN change_seq;
