<?php
/*
 * Minimal SimpleSAMLphp 1.19 (Debian bookworm package) config for a loopback test IdP.
 * tests/interop/simplesamlphp.py copies this folder to a writable runtime dir (SSP_RUNTIME) and
 * starts `php -S` on it. SSP_BASEURL is the IdP's public URL: http://127.0.0.1:PORT/ when it is
 * reached directly, https://<host>/ when a test puts it behind the TLS proxy on its own site.
 */
$base = getenv('SSP_RUNTIME') ?: dirname(__DIR__);
$baseurl = getenv('SSP_BASEURL') ?: 'http://127.0.0.1:8080/';
$config = [
    // php -S serves /usr/share/simplesamlphp/www as document root, so everything lives at "/"
    'baseurlpath' => $baseurl,
    'application' => ['baseURL' => $baseurl],

    'certdir'     => $base . '/cert/',
    'loggingdir'  => $base . '/log/',
    'datadir'     => $base . '/data/',
    'tempdir'     => $base . '/tmp/',
    'metadatadir' => $base . '/config/metadata/',

    'technicalcontact_name'  => 'Test Admin',
    'technicalcontact_email' => 'admin@example.org',
    'timezone' => 'UTC',

    // test-only secrets
    'secretsalt' => 'loopback-test-salt-0123456789abcdef',
    'auth.adminpassword' => 'admin-test-password',
    'admin.protectindexpage' => false,
    'admin.protectmetadata' => false,

    'showerrors' => true,
    'errorreporting' => false,
    'debug' => ['saml' => true, 'backtraces' => true, 'validatexml' => false],

    'logging.level' => SimpleSAML\Logger::DEBUG,
    'logging.handler' => 'file',
    'logging.logfile' => 'simplesamlphp.log',

    'enable.saml20-idp' => true,
    'enable.shib13-idp' => false,
    'enable.adfs-idp' => false,

    'module.enable' => [
        'exampleauth' => true,
        'core' => true,
        'saml' => true,
        'admin' => true,
    ],

    // plain http on loopback: cookies must not be Secure / SameSite=None
    'session.cookie.secure' => false,
    'session.cookie.samesite' => null,
    'session.phpsession.cookiename' => 'SimpleSAML',
    'session.phpsession.savepath' => $base . '/sessions',
    'session.phpsession.httponly' => true,
    'language.cookie.secure' => false,
    'language.cookie.samesite' => null,

    'store.type' => 'phpsession',
    'metadata.sources' => [['type' => 'flatfile']],
    'metadata.sign.enable' => false,

    'theme.use' => 'default',
    'usenewui' => false,
];
