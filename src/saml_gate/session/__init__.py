"""Who is signed in: the session cookie, pending sign-ins, revocations, cookie helpers."""
