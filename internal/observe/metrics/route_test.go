package metrics

import (
	"fmt"
	"testing"
)

func TestRoute(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ path, want string }{
		{"", "/"},
		{"/", "/"},
		{"/healthz", "/healthz"},
		{"/orders/123", "/orders/{id}"},
		{"/orders/123/items", "/orders/{id}/items"},
		{"/users/4bf92f3577b34da6/profile", "/users/{id}/profile"},
		{"/u/550e8400-e29b-41d4-a716-446655440000", "/u/{id}"},
		{"/api/v1/things", "/api/v1/things"},
		{"/api/v2/things/7/parts", "/api/v2/things/*"},
		{"/static/app.3f9a1b2c.js", "/static/{id}"},
		{"/static/style.css", "/static/style.css"},
		{"/blog/", "/blog/"},
		{"/a%20b", "/{id}"},
		{"/deadbeef", "/deadbeef"},
	} {
		if got := Route(tc.path); got != tc.want {
			t.Errorf("Route(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestRoutesPerAppAreBounded(t *testing.T) {
	t.Parallel()
	rs := &routes{app: map[string]map[string]struct{}{}}
	for i := range 3 * maxRoutes {
		rs.of("a", fmt.Sprintf("/page-%c%c", 'a'+i%26, 'a'+i/26))
	}
	if got := rs.of("a", "/another"); got != otherRoute {
		t.Errorf("a route past the limit = %q, want %q", got, otherRoute)
	}
	if got := rs.of("a", "/page-aa"); got != "/page-aa" {
		t.Errorf("a known route = %q", got)
	}
	if got := rs.of("b", "/another"); got != "/another" {
		t.Errorf("another app's route = %q: the limit is per app", got)
	}
	rs.forget("a")
	if got := rs.of("a", "/another"); got != "/another" {
		t.Errorf("after forget: %q", got)
	}
}
