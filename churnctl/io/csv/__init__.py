"""The CSV record reader, its quote rule, and the location of records (lines, offsets)."""
