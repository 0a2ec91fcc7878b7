DROP TABLE slot_sync_marks;
