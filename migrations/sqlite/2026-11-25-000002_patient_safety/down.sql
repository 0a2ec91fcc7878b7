DROP TABLE login_failures;
DROP TABLE rate_counters;
DROP INDEX bookings_patient_status;
DROP INDEX bookings_phone_key;
ALTER TABLE bookings DROP COLUMN manage_nonce;
ALTER TABLE bookings DROP COLUMN phone_key;
ALTER TABLE bookings DROP COLUMN patient_phone;
ALTER TABLE bookings DROP COLUMN patient_name;
