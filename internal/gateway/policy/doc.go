// Package policy decides who may reach an app through the gateway, and who
// may use the platform API, with Cedar policies (github.com/cedar-policy/cedar-go).
//
// An app's manifest names its access policy (spec.Access): "public" lets
// everyone in, "authenticated" lets any signed-in user in, and a ".cedar"
// file in the app folder decides with its own permit and forbid policies.
// Compile turns that into a Set once per release; Set.Authorize then decides
// each request. The package is pure: the caller gathers the facts of a
// request (who, what, trust score, source address, time) into a Request;
// nothing here reads a clock, a store or the network.
//
// # The model
//
// The Cedar schema is schema.cedarschema, embedded in the package; every
// policy is validated against it in strict mode, so a policy that names an
// unknown attribute, entity type or action is refused before it can apply.
//
// Principals:
//   - User::"<name>", attrs { name: String }, a member of Role::"<role>"
//     for each of the user's roles (principal in Role::"admin").
//   - Workload::"<app>", attrs { app: String }: the sandbox of another app
//     calling through the gateway's internal mTLS listener.
//
// Actions:
//   - Action::"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
//     HTTP requests to an app; principal User or Workload, resource Route.
//   - Action::"read" and Action::"write": the platform API; principal User,
//     resource Platform.
//
// Resources:
//   - Route::"<app>:<prefix>", attrs { app: String, path: String }, a member
//     of App::"<app>"; path is the route prefix of the manifest's
//     access.routes that matched the request ("/" when none did).
//   - Platform::"api".
//
// Context (every attribute is always present):
//
//	trust       Long     the request's trust score (0-100)
//	signals     Record   points each trust signal gave, 0 if none:
//	                     password, second_factor, device_cert, device_age,
//	                     known_network, usual_hours, new_location,
//	                     waf_hits, failed_logins
//	source_ip   ipaddr   the client's address (0.0.0.0 when unknown)
//	hour        Long     hour of the request, 0-23 UTC
//	weekday     Long     day of the week, 0 = Sunday (UTC)
//	path        String   the request path
//	method      String   the HTTP method ("" for the platform API)
//	mtls        String   SPIFFE ID of the client certificate, "" without
//	device      String   the device ID, "" without
//	verb        String   the platform API route ("POST /v1/apps/{app}/deploy"), "" for HTTP
//
// # Deciding
//
// Authorize denies by default. In order:
//
//  1. A public app allows everything (reason "public").
//  2. An action the Set does not serve (not an HTTP method for an app, not
//     read/write for the platform) or an unknown principal kind is denied.
//  3. For a user, the minimum trust of the route (spec.Access.Rule) is
//     checked before any policy runs; below it the request is denied with
//     the score, the minimum and the sign-in signals that would raise it.
//     A workload has no trust score to speak of (it proves its SVID on
//     every connection): only the policies judge it.
//  4. The Cedar policies are evaluated. Any evaluation error denies (even
//     where Cedar would let another permit decide), a matching forbid
//     denies, a matching permit allows, and with no matching permit the
//     request is denied. A file with no permit, or an empty file, therefore
//     denies everything.
//
// The built-in "authenticated" policy is
//
//	permit (principal is User, action, resource);
//
// so a workload is never let in without a policy file naming it. Platform
// returns the API's built-in policy: Role::"admin" may read and write,
// Role::"viewer" may read, both subject to a minimum trust.
//
// # Examples in policy files
//
// A policy file may carry examples in Cedar comments, so it stays valid
// Cedar; Test runs them:
//
//	// example: allow user=alice roles=admin method=GET path=/admin trust=30
//	// example: deny  workload=billing method=POST path=/ trust=0
//
// See docs/policies.md for the keys and for worked examples.
package policy
