ALTER TABLE bookings DROP COLUMN health_data_consent_at;
