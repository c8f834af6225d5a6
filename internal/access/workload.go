package access

import (
	"net/http"

	"noops/internal/errkind"
	"noops/internal/gateway/policy"
	"noops/internal/gateway/trust"
	"noops/internal/identity/ca"
	"noops/internal/identity/workload"
	"noops/internal/store"
)

// HeaderWorkload names the calling app on requests between workloads.
const HeaderWorkload = "X-Noops-Workload"

// AdmitWorkload decides a call of one workload to app on the gateway's
// internal listener, whose handshake verified the caller's SVID: the
// caller is the app its SPIFFE ID names, and the app's policy must permit
// that workload (the built-in "authenticated" permits users only: a
// workload needs a policy file that names it). It implements
// gateway.WorkloadGuard.
func (a *Access) AdmitWorkload(w http.ResponseWriter, r *http.Request, app string) bool {
	h := r.Header
	for _, k := range []string{HeaderUser, HeaderRoles, HeaderDevice, HeaderTrust, HeaderWorkload} {
		delete(h, k)
	}
	rule := (*a.apps.Load())[app]
	if rule == nil {
		a.refuse(w, r, app, nil, http.StatusForbidden, app+" has no access policy yet: no release of it is live")
		return false
	}
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		a.refuse(w, r, app, nil, http.StatusUnauthorized, "the internal listener needs a workload certificate")
		return false
	}
	id := ca.SPIFFEID(r.TLS.VerifiedChains[0][0])
	caller, ok := workload.AppOf(id, a.id.Domain())
	if !ok {
		a.refuse(w, r, app, nil, http.StatusForbidden, "the client certificate is not a workload identity of this platform")
		return false
	}
	if (*a.apps.Load())[caller] == nil {
		a.refuse(w, r, app, nil, http.StatusForbidden, "the calling app "+caller+" does not exist any more")
		return false
	}
	if !rule.set.Public() {
		d := rule.set.Authorize(policy.Request{
			Principal: policy.Principal{Kind: policy.KindWorkload, Name: caller},
			Action:    r.Method, App: app, Path: r.URL.Path, Trust: a.cfg.Weights.Score(trust.Input{DeviceCert: true}),
			SourceIP: clientAddr(r), Time: a.cfg.Now(), MTLS: id.String(),
		})
		if !d.Allow {
			a.audit(store.AuditEntry{Time: a.cfg.Now(), Actor: "workload:" + caller, Action: "deny " + r.Method + " " + r.URL.Path,
				Target: "app:" + app, Status: http.StatusForbidden, Detail: d.Reason})
			a.log.Info("workload call denied", "app", app, "caller", caller, "method", r.Method, "path", r.URL.Path, "reason", d.Reason, "policies", d.Policies)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte("403 Forbidden: " + d.Reason + "\n"))
			return false
		}
	}
	h[HeaderWorkload] = []string{caller}
	return true
}

// Caller returns the app whose workload made a request on the internal
// listener (the handshake verified its SVID), or an error that says why
// it is not one: for platform endpoints workloads call, such as
// publishing events.
func (a *Access) Caller(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return "", errkind.Errorf(errkind.Unauthenticated, "the internal listener needs a workload certificate")
	}
	caller, ok := workload.AppOf(ca.SPIFFEID(r.TLS.VerifiedChains[0][0]), a.id.Domain())
	if !ok {
		return "", errkind.Errorf(errkind.Permission, "the client certificate is not a workload identity of this platform")
	}
	if (*a.apps.Load())[caller] == nil {
		return "", errkind.Errorf(errkind.Permission, "the calling app %s does not exist any more", caller)
	}
	return caller, nil
}
