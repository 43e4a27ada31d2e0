"""The gate's HTTP face: the router (router.py), one handler per flow (login, acs, logout,
info), the request view and forms, the pages, and refusals."""
