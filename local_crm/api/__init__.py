"""The local CRM's HTTP API, one module per surface; `local_crm.server` assembles them."""
