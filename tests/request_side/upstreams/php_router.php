<?php
// The PHP upstreams of the request-side suite: PHP's built-in server (php -S) runs this router
// for every request, and UPSTREAM_FRAMEWORK says which framework reads it:
//
//   symfony  Symfony 5.4's Request::createFromGlobals() with enableHttpMethodParameterOverride()
//            (what a Symfony app with http_method_override: true does) and Symfony Routing's
//            UrlMatcher: a POST's method from X-HTTP-Method-Override, else _method from the
//            form body ($_POST), else from the query ($_GET)
//   laravel  Laravel 8's Illuminate\Http\Request::capture() (which turns the override on, and
//            reads a JSON body as the input, so _method comes from JSON too) and Laravel's
//            RouteCollection (every route Route::any would register)
//
// Both use the Debian packages' sources (php-symfony-*, php-illuminate-*). The answer reports
// the resource routed to, the decoded path, the method the framework runs, and the identity
// headers and Cookie received, as the other upstreams do (tests/request_side/apps.py).

use Symfony\Component\HttpFoundation\Exception\RequestExceptionInterface;
use Symfony\Component\HttpFoundation\Request as SymfonyRequest;
use Symfony\Component\HttpKernel\Exception\HttpExceptionInterface;
use Symfony\Component\Routing\Exception\MethodNotAllowedException;
use Symfony\Component\Routing\Exception\ResourceNotFoundException;

require_once 'Symfony/Component/HttpFoundation/autoload.php';
require_once 'Symfony/Component/Routing/autoload.php';

// [resource, path, requirement of its {rest} or {id} part]
const RESOURCES = [
    ['health', '/health', null],
    ['static', '/static/{rest}', '.*'],
    ['admin', '/admin', null],
    ['admin', '/admin/{rest}', '.*'],
    ['api', '/api/{rest}', '.*'],
    ['reports', '/reports/{id}', '[0-9]+'],
    ['docs', '/docs/{rest}', '.*'],
    ['forms', '/forms/{rest}', '.*'],
    ['home', '/', null],
    ['page', '/{rest}', '.+'],
];

function answer(int $status, array $headers, string $body): void
{
    http_response_code($status);
    foreach ($headers as $name => $value) {
        header("$name: $value");
    }
    echo $body;
}

function report(string $resource, string $path, string $method): void
{
    $identity = [];
    foreach ($_SERVER as $key => $value) {
        if (preg_match('/^HTTP_X_FORWARDED_(USER|EMAIL|GROUPS)$/', $key)) {
            $identity[] = [strtolower(str_replace('_', '-', substr($key, 5))), $value];
        }
    }
    $body = json_encode([
        'resource' => $resource, 'path' => $path, 'method' => $method,
        'identity' => $identity, 'cookie' => $_SERVER['HTTP_COOKIE'] ?? null,
    ]);
    answer(200, [
        'Content-Type' => 'application/json',
        'X-Served-Resource' => $resource,
        'X-Served-Path' => rawurlencode($path),
        'X-Served-Method' => rawurlencode($method),
    ], $body);
}

function symfony(): void
{
    SymfonyRequest::enableHttpMethodParameterOverride();
    $request = SymfonyRequest::createFromGlobals();
    $routes = new Symfony\Component\Routing\RouteCollection();
    foreach (RESOURCES as $i => [$name, $path, $part]) {
        $requirements = $part === null ? [] : ['rest' => $part, 'id' => $part];
        $routes->add("r$i", new Symfony\Component\Routing\Route($path, ['_resource' => $name], $requirements));
    }
    try {
        $context = (new Symfony\Component\Routing\RequestContext())->fromRequest($request);
        $match = (new Symfony\Component\Routing\Matcher\UrlMatcher($routes, $context))->matchRequest($request);
        report($match['_resource'], rawurldecode($request->getPathInfo()), $request->getMethod());
    } catch (RequestExceptionInterface $e) {  // what Symfony's HttpKernel answers with 400
        answer(400, [], 'bad request');
    } catch (ResourceNotFoundException $e) {
        answer(404, [], 'not found');
    } catch (MethodNotAllowedException $e) {
        answer(405, [], 'method not allowed');
    }
}

function laravel(): void
{
    require_once 'Illuminate/Routing/autoload.php';
    $request = Illuminate\Http\Request::capture();
    $routes = new Illuminate\Routing\RouteCollection();
    foreach (RESOURCES as [$name, $path, $part]) {
        $route = new Illuminate\Routing\Route(Illuminate\Routing\Router::$verbs, $path, ['uses' => fn () => null, 'resource' => $name]);
        if ($part !== null) {
            $route->where(['rest' => $part, 'id' => $part]);
        }
        $routes->add($route);
    }
    try {
        $route = $routes->match($request);
        report($route->getAction('resource'), '/' . ltrim($request->decodedPath(), '/'), $request->getMethod());
    } catch (RequestExceptionInterface $e) {
        answer(400, [], 'bad request');
    } catch (HttpExceptionInterface $e) {  // no route (404), not for this method (405)
        answer($e->getStatusCode(), [], 'refused');
    }
}

getenv('UPSTREAM_FRAMEWORK') === 'laravel' ? laravel() : symfony();
