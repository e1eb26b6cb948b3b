"""Ingestion into the warehouse: CRM objects (dlt over crm/) and landing files."""
