<?php
// The entity ID follows the public URL (SSP_BASEURL, see config.php)
$metadata[(getenv('SSP_BASEURL') ?: 'http://127.0.0.1:8080/') . 'saml2/idp/metadata.php'] = [
    'host' => '__DEFAULT__',
    'privatekey' => 'server.pem',
    'certificate' => 'server.crt',
    'auth' => 'example-userpass',

    // NameID: emailAddress taken from the "email" attribute
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    'simplesaml.nameidattribute' => 'email',

    // basic attribute names (email, groups, ...) instead of urn:oid
    'attributes.NameFormat' => 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',

    'signature.algorithm' => 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    'sign.logout' => true,
    'redirect.sign' => false,
    // Advertised in the IdP metadata as WantAuthnRequestsSigned (checked per SP, see
    // saml20-sp-remote.php): requests must be signed exactly when the SP's certificate is known.
    'validate.authnrequest' => (bool) getenv('SP_CERT_FILE'),
    'assertion.encryption' => false,
];
