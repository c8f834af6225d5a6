package functions

import (
	"encoding/json"
	"net/http"
	"strings"

	"noops/internal/access"
	"noops/internal/errkind"
	"noops/internal/events"
)

// accepted is the 202 answer to an asynchronous invocation, also what a
// retry with the same Idempotency-Key gets.
func accepted(app string, inv events.Invocation) events.Record {
	loc := access.PlatformPrefix + inv.ID
	body, _ := json.Marshal(map[string]string{"id": inv.ID, "status": string(inv.Status), "status_url": loc, "trace_id": inv.TraceID})
	h := http.Header{"Content-Type": {"application/json"}, "Location": {loc}, "Cache-Control": {"no-store"}}
	return events.Record{Status: http.StatusAccepted, Header: h, Body: append(body, '\n')}
}

// serveInvocation answers GET (status and, once done, the app's answer)
// and DELETE (cancel) of /.noops/invocations/ID under the app's host.
// The app's access policy has admitted the caller; the ID, 128 random
// bits, is the capability.
func (l *Layer) serveInvocation(w http.ResponseWriter, r *http.Request, app string) {
	id := strings.TrimPrefix(r.URL.Path, access.PlatformPrefix)
	var inv events.Invocation
	var err error
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		inv, err = l.bus.Invocation(r.Context(), id)
	case http.MethodDelete:
		if inv, err = l.bus.Invocation(r.Context(), id); err == nil && inv.App == app {
			inv, err = l.bus.Cancel(r.Context(), id)
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, DELETE")
		refuse(w, http.StatusMethodNotAllowed, "an invocation is read with GET and cancelled with DELETE")
		return
	}
	if err == nil && inv.App != app {
		err = errkind.Errorf(errkind.NotFound, "no invocation %s of %s", id, app)
	}
	if err != nil {
		refuse(w, errkind.HTTPStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, inv)
}
