"""CRM connectivity shared by ingestion and write-back (no Dagster imports)."""

from crm.retry import Backoff, RetryPolicy
from crm.salesforce import CrmError, CrmSettings, SalesforceConnection, connect

__all__ = ["Backoff", "CrmError", "CrmSettings", "RetryPolicy", "SalesforceConnection", "connect"]
