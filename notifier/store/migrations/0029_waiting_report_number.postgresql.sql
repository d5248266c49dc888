-- The number a report waiting to be applied names (0027), until it is applied; bytewise, as every text column (0023).
ALTER TABLE receipts ADD COLUMN address TEXT COLLATE "C";
