CREATE INDEX bookings_patient ON bookings (patient_id);
