"""The local CRM: a Salesforce-compatible API subset over one SQLite file.

`db.CrmStore` is the store, `server.start_in_process` / `server.serve` run the HTTP API,
`faults` injects failures, `schema` lists the objects. Submodules are imported lazily so
importing the package stays cheap.
"""
