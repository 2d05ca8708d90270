"""HTML forms, one module per area; they parse and check input, services decide and store."""
