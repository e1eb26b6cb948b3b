"""The `books` command line (thin: parses arguments, calls the packages)."""
