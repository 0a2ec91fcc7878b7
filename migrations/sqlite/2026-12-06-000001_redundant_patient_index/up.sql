-- `bookings_patient_status (patient_id, status)` answers every lookup by patient, the
-- foreign key's checks included; this index only cost every booking's insert one more
-- write.
DROP INDEX bookings_patient;
