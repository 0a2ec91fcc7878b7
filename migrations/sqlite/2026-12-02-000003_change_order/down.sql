DROP TRIGGER bookings_change_seq_insert;
DROP TRIGGER bookings_change_seq_update;
DROP TABLE change_counter;
DROP INDEX bookings_change_order;
ALTER TABLE bookings DROP COLUMN change_seq;
