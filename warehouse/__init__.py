"""The warehouse file's runtime guarantees: one writer at a time, and readers never blocked."""
