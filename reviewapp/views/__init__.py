"""HTML and JSON views, one module per area; small functions that delegate to services and selectors."""
