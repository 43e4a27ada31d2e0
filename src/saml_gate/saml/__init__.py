"""SAML itself: strict XML, signatures, the Response and logout rules, SP and IdP metadata."""
