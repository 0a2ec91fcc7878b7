-- When the patient agreed, on the booking form, to the processing of their screening
-- answers (health data); NULL where no such agreement was given (the API may omit it).
ALTER TABLE bookings ADD COLUMN health_data_consent_at TIMESTAMP;
