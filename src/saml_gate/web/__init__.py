"""The gate's HTTP face: the request view, pages, forms, and its endpoints."""
