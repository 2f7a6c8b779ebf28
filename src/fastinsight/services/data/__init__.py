"""Data in: catalogue CRUD, ingestion (validate -> transform -> insert), file parsing, demo data."""
