package registry

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// User is the registry's one user name; its password is the token.
const User = "noops"

// TokenFile is the token's file name in Config.Dir.
const TokenFile = "token"

// minToken is the shortest token accepted from the file.
const minToken = 32

// loadToken reads the token from dir/token, making one (32 random bytes,
// base64url) the first time. The file is the server's: 0600.
func loadToken(dir string, log *slog.Logger) (string, error) {
	path := filepath.Join(dir, TokenFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newToken(path)
	}
	if err != nil {
		return "", fmt.Errorf("reading the registry token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < minToken || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("the registry token in %s is not valid (empty, short or several lines): remove the file and restart the server to make a new one", path)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return "", fmt.Errorf("restricting %s: %w", path, err)
		}
		log.Warn("the registry token file was readable by others; it is 0600 now, consider a new token (remove the file and restart)", "file", path)
	}
	return tok, nil
}

func newToken(path string) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("making the registry token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(raw)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("writing the registry token: %w", err)
	}
	_, err = f.WriteString(tok + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing the registry token: %w", err)
	}
	return tok, nil
}

// authorized checks the request's basic credentials. It answers a request
// without valid ones (401 with a Basic challenge, or 429 for a client
// that failed too often) and returns false.
func (r *Registry) authorized(w http.ResponseWriter, req *http.Request) bool {
	client := clientKey(req.RemoteAddr)
	if wait, blocked := r.limit.blocked(client); blocked {
		r.log.Debug("registry: refused a client that failed to sign in too often", "client", client, "method", req.Method, "path", req.URL.Path)
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeAPIError(w, apiErr(http.StatusTooManyRequests, "TOOMANYREQUESTS", "too many failed sign-ins from %s: try again in %ds", client, secs))
		return false
	}
	user, pass, ok := req.BasicAuth()
	if !ok {
		challenge(w, "authentication required: sign in as %s with the token `noops registry token` prints", User)
		return false
	}
	if r.valid(user, pass) {
		return true
	}
	left := r.limit.fail(client)
	// Never the password: it may be a real one given for the wrong user.
	r.log.Warn("registry: failed sign-in", "client", client, "user", truncate(user, 64), "method", req.Method, "path", req.URL.Path, "attempts_left", left)
	challenge(w, "wrong user name or token: sign in as %s with the token `noops registry token` prints", User)
	return false
}

// valid compares credentials in constant time: hashing first makes the
// comparison independent of the given password's length too.
func (r *Registry) valid(user, pass string) bool {
	u := sha256.Sum256([]byte(user))
	wantU := sha256.Sum256([]byte(User))
	p := sha256.Sum256([]byte(pass))
	wantP := sha256.Sum256([]byte(r.token))
	return subtle.ConstantTimeCompare(u[:], wantU[:])&subtle.ConstantTimeCompare(p[:], wantP[:]) == 1
}

func challenge(w http.ResponseWriter, format string, args ...any) {
	w.Header().Set("WWW-Authenticate", `Basic realm="noops"`)
	writeAPIError(w, apiErr(http.StatusUnauthorized, "UNAUTHORIZED", format, args...))
}

// clientKey is what failed sign-ins are counted by: the client's IP
// address, or its /64 for IPv6, where one client holds a whole prefix.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// maxTracked bounds the clients the limiter remembers; past it, clients
// whose bucket has refilled are forgotten.
const maxTracked = 4096

// limiter is a token bucket of failed sign-ins per client: each failure
// takes a token, one comes back every refill up to burst, and a client
// without a token is refused until one comes back.
type limiter struct {
	burst  float64
	refill time.Duration
	now    func() time.Time

	mu      sync.Mutex
	clients map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(burst int, refill time.Duration, now func() time.Time) *limiter {
	return &limiter{burst: float64(burst), refill: refill, now: now, clients: map[string]*bucket{}}
}

// top refills b up to now. Call with l.mu held.
func (l *limiter) top(b *bucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(l.burst, b.tokens+float64(d)/float64(l.refill))
	}
	b.at = now
}

// blocked reports whether client has no failure left, and how long until
// it has one.
func (l *limiter) blocked(client string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[client]
	if b == nil {
		return 0, false
	}
	l.top(b, l.now())
	if b.tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - b.tokens) * float64(l.refill)), true
}

// fail counts a failed sign-in of client and returns how many more it may
// fail before it is refused.
func (l *limiter) fail(client string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.clients[client]
	if b == nil {
		if len(l.clients) >= maxTracked {
			l.forgetRefilled(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.clients[client] = b
	}
	l.top(b, now)
	b.tokens = math.Max(0, b.tokens-1)
	return int(b.tokens)
}

// forgetRefilled drops the clients whose bucket is full again. Call with
// l.mu held.
func (l *limiter) forgetRefilled(now time.Time) {
	for k, b := range l.clients {
		l.top(b, now)
		if b.tokens >= l.burst {
			delete(l.clients, k)
		}
	}
}
