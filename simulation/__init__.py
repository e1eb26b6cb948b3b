"""The policy lab: weeks of dynamic books simulated on a twin of the CRM (see README.md)."""
