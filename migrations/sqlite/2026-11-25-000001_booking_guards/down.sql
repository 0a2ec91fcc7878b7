DROP TRIGGER IF EXISTS bookings_no_overlap_update;
DROP TRIGGER IF EXISTS bookings_no_overlap_insert;
DROP TRIGGER IF EXISTS bookings_time_range_update;
DROP TRIGGER IF EXISTS bookings_time_range_insert;
