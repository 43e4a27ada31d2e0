"""XML namespaces and algorithm identifiers shared by the verifier, the SP side and the dev IdP."""

from __future__ import annotations

from typing import Final

NS_SAMLP: Final = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_SAML: Final = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_MD: Final = "urn:oasis:names:tc:SAML:2.0:metadata"
NS_DS: Final = "http://www.w3.org/2000/09/xmldsig#"
NS_XENC: Final = "http://www.w3.org/2001/04/xmlenc#"
NS_XENC11: Final = "http://www.w3.org/2009/xmlenc11#"
NS_XS: Final = "http://www.w3.org/2001/XMLSchema"
NS_XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
NS_XML: Final = "http://www.w3.org/XML/1998/namespace"

#: Okta's prefixes: the dev IdP writes them so that our tests look like Okta's traffic.
NSMAP_OKTA: Final = {"saml2p": NS_SAMLP, "saml2": NS_SAML}

STATUS_SUCCESS: Final = "urn:oasis:names:tc:SAML:2.0:status:Success"
CM_BEARER: Final = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
NAMEID_EMAIL: Final = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_UNSPECIFIED: Final = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_PERSISTENT: Final = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_TRANSIENT: Final = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_ENTITY: Final = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
ATTRNAME_BASIC: Final = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
ATTRNAME_UNSPECIFIED: Final = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"
AC_PASSWORD_PROTECTED: Final = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"  # noqa: S105

BINDING_HTTP_POST: Final = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_HTTP_REDIRECT: Final = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"

# Signature and digest algorithms
C14N_EXCL: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
TRANSFORM_ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA1: Final = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
ECDSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ECDSA_SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
ECDSA_SHA512: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
DIGEST_SHA1: Final = "http://www.w3.org/2000/09/xmldsig#sha1"
DIGEST_SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"
DIGEST_SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#sha384"
DIGEST_SHA512: Final = "http://www.w3.org/2001/04/xmlenc#sha512"

# Encryption algorithms
AES128_CBC: Final = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
AES192_CBC: Final = "http://www.w3.org/2001/04/xmlenc#aes192-cbc"
AES256_CBC: Final = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
AES128_GCM: Final = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
AES192_GCM: Final = "http://www.w3.org/2009/xmlenc11#aes192-gcm"
AES256_GCM: Final = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
TRIPLEDES_CBC: Final = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
RSA_OAEP_MGF1P: Final = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
RSA_OAEP: Final = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
RSA_1_5: Final = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
ENC_TYPE_ELEMENT: Final = "http://www.w3.org/2001/04/xmlenc#Element"
ENC_TYPE_ENCRYPTED_KEY: Final = "http://www.w3.org/2001/04/xmlenc#EncryptedKey"
MGF1_SHA1: Final = "http://www.w3.org/2009/xmlenc11#mgf1sha1"
