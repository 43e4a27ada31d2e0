# The Ruby upstreams of the request-side suite, each on its own Puma 5 server in this process:
#
#   sinatra  a Sinatra 3 classic app: Rack 2.2's Rack::MethodOverride (a POST's _method from
#            any body Rack::Request#POST parses, or X-HTTP-Method-Override) and Mustermann routes
#   rails    ActionDispatch 6.1's router (Rails-style routes, each ending in "(.:format)") behind
#            Rack::MethodOverride and ActionDispatch::ShowExceptions, as in a Rails app's stack
#
# Every answer reports the resource the framework routed to, the path it routed (decoded, and
# for Rails without the format it took off), the method it ran, and the identity headers and
# Cookie it received (tests/request_side/apps.py has the same report for the Python apps).
# Run: ruby ruby_apps.rb; it prints "SINATRA_PORT RAILS_PORT", then serves until stdin closes.
# Errors go to stderr, which the tests watch.

require "erb"
require "json"
require "stringio"

require "action_dispatch"
require "puma"
require "puma/events"
require "puma/server"
require "rack"
require "sinatra/base"

IDENTITY = /\AHTTP_X_FORWARDED_(USER|EMAIL|GROUPS)\z/

def report(resource, path, method, env)
  path = path.dup.force_encoding(Encoding::UTF_8).scrub  # %ff decodes to no UTF-8
  identity = env.select { |key, _| IDENTITY.match?(key) }
                .map { |key, value| [key.delete_prefix("HTTP_").downcase.tr("_", "-"), value] }
  body = JSON.generate(
    resource: resource, path: path, method: method, identity: identity, cookie: env["HTTP_COOKIE"]
  )
  headers = {
    "Content-Type" => "application/json",
    "X-Served-Resource" => resource,
    "X-Served-Path" => ERB::Util.url_encode(path),
    "X-Served-Method" => ERB::Util.url_encode(method),
  }
  [200, headers, [body]]
end

# Sinatra::Application is the classic app: method_override is on.
class SinatraTarget < Sinatra::Application
  set :environment, :production
  set :logging, false
  set :show_exceptions, false
  set :raise_errors, false

  # Every verb Sinatra routes (and Rack::MethodOverride can produce).
  VERBS = %w[GET HEAD POST PUT DELETE PATCH OPTIONS LINK UNLINK].freeze

  def self.resource(pattern, name)
    VERBS.each do |verb|
      route(verb, pattern) do
        path = Rack::Utils.unescape_path(request.path_info)
        status, headers, body = report(name, path, request.request_method, request.env)
        halt status, headers, body
      end
    end
  end

  resource "/health", "health"
  resource "/static/*", "static"
  resource "/admin", "admin"
  resource "/admin/*", "admin"
  resource "/api/*", "api"
  resource %r{/reports/[0-9]+}, "reports"
  resource "/docs/*", "docs"
  resource "/forms/*", "forms"
  resource "/", "home"
  resource "/*", "page"
end

# A Rails endpoint: the path the router matched, without the format it took off.
def rails_endpoint(name)
  lambda do |env|
    format = ActionDispatch::Request.new(env).path_parameters[:format]
    path = Rack::Utils.unescape_path(env["PATH_INFO"]).squeeze("/")
    path = path.chomp("/") unless path == "/"
    path = path.delete_suffix(".#{format}") if format
    report(name, path, env["REQUEST_METHOD"], env)
  end
end

RAILS_ROUTES = ActionDispatch::Routing::RouteSet.new
RAILS_ROUTES.draw do
  match "/health", to: rails_endpoint("health"), via: :all
  match "/static/*rest", to: rails_endpoint("static"), via: :all
  match "/admin", to: rails_endpoint("admin"), via: :all
  match "/admin/*rest", to: rails_endpoint("admin"), via: :all
  match "/api/*rest", to: rails_endpoint("api"), via: :all
  match "/reports/:id", to: rails_endpoint("reports"), via: :all, constraints: { id: /[0-9]+/ }
  match "/docs/*rest", to: rails_endpoint("docs"), via: :all
  match "/forms/*rest", to: rails_endpoint("forms"), via: :all
  root to: rails_endpoint("home"), via: :all
  match "*rest", to: rails_endpoint("page"), via: :all
end

RAILS = Rack::Builder.new do
  use ActionDispatch::ShowExceptions, ActionDispatch::PublicExceptions.new(Dir.tmpdir)
  use Rack::MethodOverride
  run RAILS_ROUTES
end.to_app

events = Puma::Events.new(StringIO.new, $stderr)
servers = [SinatraTarget, RAILS].map do |app|
  server = Puma::Server.new(app, events, min_threads: 1, max_threads: 4)
  server.add_tcp_listener("127.0.0.1", 0)
  server
end
ports = servers.map { |server| server.connected_ports.first }
servers.each(&:run)
$stdout.puts ports.join(" ")
$stdout.flush
$stdin.read
servers.each(&:stop)
