-- The number a report waiting to be applied names (0027), until it is applied.
ALTER TABLE receipts ADD COLUMN address TEXT;
