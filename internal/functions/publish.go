package functions

import (
	"io"
	"net/http"
	"strings"

	"noops/internal/errkind"
	"noops/internal/events"
	"noops/internal/spec"
)

// EventsPrefix is where workloads publish on the internal listener:
// POST /.noops/events/TOPIC with the data as body (CloudEvents binary
// mode: ce-type, ce-id, ce-source, ce-partitionkey, traceparent and
// Content-Type are taken from the request's headers).
const EventsPrefix = "/.noops/events/"

// ServeHTTP serves the platform's paths on the internal listener: a
// workload publishing an event. The caller is the app its SVID names; it
// may publish only to the topics its release's events.publish lists.
func (l *Layer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	topic, ok := strings.CutPrefix(r.URL.Path, EventsPrefix)
	if !ok {
		refuse(w, http.StatusNotFound, "the internal listener serves "+EventsPrefix+"TOPIC for the platform; call an app by its Host header")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		refuse(w, http.StatusMethodNotAllowed, "publish an event with POST")
		return
	}
	app, err := l.caller(r)
	if err != nil {
		refuse(w, errkind.HTTPStatus(err), err.Error())
		return
	}
	if err := spec.ValidTopic(topic); err != nil {
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	conf := l.conf(app)
	if conf == nil || !allowed(conf.publish, topic) {
		l.log.Info("publish refused", "app", app, "topic", topic)
		refuse(w, http.StatusForbidden, app+" may not publish to "+topic+": list it in the manifest's events.publish")
		return
	}
	limit := l.bus.MaxEventSize()
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		refuse(w, http.StatusBadRequest, "reading the event: "+err.Error())
		return
	}
	if len(body) > limit {
		refuse(w, http.StatusRequestEntityTooLarge, "the event is over the limit of "+itoa(limit)+" bytes")
		return
	}
	e := events.EventFromHTTP(topic, r.Header, body)
	if err := l.bus.Publish(r.Context(), &e, "/apps/"+app); err != nil {
		refuse(w, errkind.HTTPStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": e.ID, "topic": e.Topic})
}

func allowed(patterns []string, topic string) bool {
	for _, p := range patterns {
		if spec.TopicMatches(p, topic) {
			return true
		}
	}
	return false
}
