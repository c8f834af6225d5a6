package metrics

import (
	"strings"
	"sync"
)

// Routes: the gateway does not know an app's routes, so the http_route
// label is a template made from the path: segments that look like
// identifiers become {id}, paths deeper than maxRouteDepth end in /*, and
// an app has at most maxRoutes templates (the rest are "_OTHER"), so that
// clients cannot make up series.
const (
	maxRouteDepth = 3
	maxRoutes     = 100
	otherRoute    = "_OTHER"
)

// routes remembers each app's route templates.
type routes struct {
	mu  sync.RWMutex
	app map[string]map[string]struct{}
}

// of returns path's template, counted against app's limit.
func (rs *routes) of(app, path string) string {
	r := Route(path)
	rs.mu.RLock()
	_, ok := rs.app[app][r]
	n := len(rs.app[app])
	rs.mu.RUnlock()
	if ok {
		return r
	}
	if n >= maxRoutes {
		return otherRoute
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	known := rs.app[app]
	if known == nil {
		known = map[string]struct{}{}
		rs.app[app] = known
	}
	if _, ok := known[r]; !ok && len(known) >= maxRoutes {
		return otherRoute
	}
	known[r] = struct{}{}
	return r
}

func (rs *routes) forget(app string) {
	rs.mu.Lock()
	delete(rs.app, app)
	rs.mu.Unlock()
}

// Route is the template of a URL path: "/orders/123/items" is
// "/orders/{id}/items", "/a/b/c/d" is "/a/b/c/*".
func Route(path string) string {
	if path == "" || path == "/" {
		return "/"
	}
	var b strings.Builder
	rest := strings.TrimPrefix(path, "/")
	for depth := 0; ; depth++ {
		if depth == maxRouteDepth {
			b.WriteString("/*")
			break
		}
		seg, after, more := strings.Cut(rest, "/")
		b.WriteByte('/')
		if isID(seg) {
			b.WriteString("{id}")
		} else {
			b.WriteString(seg)
		}
		if !more {
			break
		}
		rest = after
		if rest == "" { // a trailing slash
			b.WriteByte('/')
			break
		}
	}
	return b.String()
}

// isID reports whether a path segment looks like an identifier rather
// than a fixed name: digits only, long, a hex string with digits, a UUID,
// anything with four digits or more, or characters names do not have.
func isID(seg string) bool {
	if len(seg) > 24 {
		return true
	}
	digits, hex := 0, true
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		case c >= 'g' && c <= 'z', c >= 'G' && c <= 'Z', c == '_', c == '.':
			hex = false
		case c == '-':
		default:
			return true // %xx escapes, ~, @, …
		}
	}
	switch {
	case digits > 0 && digits == len(seg):
		return true
	case hex && digits > 0 && len(seg) >= 8:
		return true
	}
	return digits >= 4
}
