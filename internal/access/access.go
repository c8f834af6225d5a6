// Package access is the gateway's access layer: for every request to an
// app it finds out who is asking (a device certificate presented in the
// TLS handshake, or a browser session cookie), scores the request's trust
// from what they proved and where they are (gateway/trust), and asks the
// app's Cedar policy (gateway/policy) whether the request may go on. It
// serves the sign-in pages under /.noops/ on every app host and guards the
// remote admin API the same way. Deny by default: an app that has no
// policy yet, an unknown caller, an evaluation error, all are refusals.
package access

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"noops/internal/gateway/policy"
	"noops/internal/gateway/trust"
	"noops/internal/identity"
	"noops/internal/spec"
	"noops/internal/store"
)

// Auditor records refusals in the audit log.
type Auditor interface {
	AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
}

// Config wires the access layer.
type Config struct {
	Identity *identity.Service
	Audit    Auditor
	Logger   *slog.Logger
	Now      func() time.Time
	Weights  trust.Weights // zero means trust.Default
	// AdminMinTrust is the trust the remote admin API asks of admins and
	// viewers (default DefaultAdminMinTrust: password, second factor and
	// device certificate).
	AdminMinTrust int
	// WAFHits, when set, says how many WAF hits a client address had
	// recently (the WAF feeds it); it lowers the trust score.
	WAFHits func(addr string) int
}

// DefaultAdminMinTrust needs password, second factor and a device certificate.
const DefaultAdminMinTrust = 30

// Access guards apps and the remote API. Create it with New.
type Access struct {
	cfg      Config
	id       *identity.Service
	log      *slog.Logger
	platform *policy.Set

	mu   sync.Mutex                          // serialises writers of apps
	apps atomic.Pointer[map[string]*appRule] // read on every request without a lock

	audits  chan store.AuditEntry // refusals, written by one goroutine
	dropped atomic.Int64
	stop    chan struct{}
	done    chan struct{}
}

// appRule is the access policy of an app's live release.
type appRule struct {
	release int
	access  spec.Access
	set     *policy.Set
}

// New returns the access layer; Start begins writing its audit records.
func New(cfg Config) *Access {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Weights == (trust.Weights{}) {
		cfg.Weights = trust.Default
	}
	if cfg.AdminMinTrust == 0 {
		cfg.AdminMinTrust = DefaultAdminMinTrust
	}
	a := &Access{cfg: cfg, id: cfg.Identity, log: cfg.Logger, platform: policy.Platform(cfg.AdminMinTrust),
		audits: make(chan store.AuditEntry, 1024)}
	a.apps.Store(&map[string]*appRule{})
	return a
}

// Start runs the writer of audit records (and the pruning of expired
// sessions) until Stop.
func (a *Access) Start(context.Context) error {
	a.stop, a.done = make(chan struct{}), make(chan struct{})
	go a.writeAudits(a.stop, a.done)
	return nil
}

// Stop writes the records still queued and stops.
func (a *Access) Stop(ctx context.Context) error {
	if a.stop == nil {
		return nil
	}
	close(a.stop)
	a.stop = nil
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("writing queued audit records: %w", ctx.Err())
	}
}

// SetRelease applies the access section recorded in a release to its app:
// from now on the app's requests are judged by it. A policy that does not
// compile is an errkind.Invalid error and the app keeps its previous rule.
func (a *Access) SetRelease(rel store.Release) error {
	var cfg spec.Config
	if len(rel.Config) > 0 {
		if err := json.Unmarshal(rel.Config, &cfg); err != nil {
			return fmt.Errorf("decoding the access section of release %d of %s: %w", rel.Number, rel.App, err)
		}
	}
	m := spec.Manifest{Run: cfg.Run, Access: cfg.Access}
	m.Default()
	set, err := policy.Compile(rel.App, m.Access, m.Access.Policy, []byte(cfg.PolicySource))
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	next := maps.Clone(*a.apps.Load())
	next[rel.App] = &appRule{release: rel.Number, access: m.Access, set: set}
	a.apps.Store(&next)
	return nil
}

// RemoveApp forgets an app's rule: its requests are refused until a
// release sets one again.
func (a *Access) RemoveApp(app string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := maps.Clone(*a.apps.Load())
	delete(next, app)
	a.apps.Store(&next)
}

// Public reports whether an app is served to anyone (for tests and ps).
func (a *Access) Public(app string) bool {
	r := (*a.apps.Load())[app]
	return r != nil && r.set.Public()
}

// audit queues a record; when the queue is full (a flood of refusals) it
// is counted, and the count is recorded once the queue drains.
func (a *Access) audit(e store.AuditEntry) {
	select {
	case a.audits <- e:
	default:
		a.dropped.Add(1)
	}
}

func (a *Access) writeAudits(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	write := func(e store.AuditEntry) {
		if _, err := a.cfg.Audit.AppendAudit(context.Background(), e); err != nil {
			a.log.Error("writing audit record", "action", e.Action, "err", err)
		}
	}
	prune := time.NewTicker(10 * time.Minute)
	defer prune.Stop()
	for {
		select {
		case <-prune.C:
			if a.id != nil {
				if _, err := a.id.Prune(context.Background()); err != nil {
					a.log.Warn("removing expired sessions", "err", err)
				}
			}
		case e := <-a.audits:
			write(e)
			if n := a.dropped.Swap(0); n > 0 {
				write(store.AuditEntry{Time: a.cfg.Now(), Actor: "gateway", Action: "deny", Detail: fmt.Sprintf("%d refusals not recorded one by one: the queue was full", n), Status: http.StatusForbidden})
			}
		case <-stop:
			for {
				select {
				case e := <-a.audits:
					write(e)
				default:
					return
				}
			}
		}
	}
}

// clientAddr returns the client's IP address from RemoteAddr.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func hostOnly(host string) string {
	if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.HasSuffix(host, "]") {
		return host[:i]
	}
	return host
}
