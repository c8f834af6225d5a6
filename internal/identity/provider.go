package identity

import "context"

// Provider is a source of sign-ins. The built-in identity store (Service)
// is one: it checks a password and a second factor itself. A federated
// provider (an OIDC issuer chosen per route) is another: it sends the
// browser to the issuer and turns the answer into an Auth. The access
// layer speaks to providers only through these interfaces, so adding one
// needs no change to how requests are judged: an Auth's factors feed the
// trust score whatever proved them.
type Provider interface {
	// Name identifies the provider in sessions, logs and the audit log
	// ("builtin", "oidc:<issuer>").
	Name() string
}

// PasswordProvider checks credentials typed into the platform's own
// sign-in page.
type PasswordProvider interface {
	Provider
	Authenticate(ctx context.Context, l Login) (Auth, error)
}

// RedirectProvider signs users in elsewhere (OpenID Connect's
// authorization code flow): AuthURL is where the browser goes, with state
// and the PKCE challenge bound to the sign-in; Exchange trades the code the
// browser brings back for the user's identity, mapped to a user of the
// store (created on first sign-in when the provider's policy allows it).
type RedirectProvider interface {
	Provider
	AuthURL(state, codeChallenge, redirectURI string) string
	Exchange(ctx context.Context, code, codeVerifier, redirectURI string) (Auth, error)
}

// Name is the built-in store's provider name.
func (s *Service) Name() string { return "builtin" }

var _ PasswordProvider = (*Service)(nil)
