package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"noops/internal/apitype"
	"noops/internal/errkind"
	"noops/internal/events"
)

// Bus is the event bus as the API drives it.
type Bus interface {
	Publish(ctx context.Context, e *events.Event, defaultSource string) error
	DeadLetters(ctx context.Context, app string, limit int) ([]events.DeadLetter, error)
	DeadLetter(ctx context.Context, app string, seq uint64) (events.DeadLetter, error)
	Replay(ctx context.Context, app string, seqs []uint64) (int, error)
	Invoke(ctx context.Context, app string, r *http.Request, body []byte) (events.Invocation, error)
	Invocation(ctx context.Context, id string) (events.Invocation, error)
	Cancel(ctx context.Context, id string) (events.Invocation, error)
	// Call invokes an app synchronously.
	Call(ctx context.Context, app string, r *http.Request, limit int) (*events.Response, error)
}

func (s *server) eventRoutes(handle func(string, func(http.ResponseWriter, *http.Request) error)) {
	handle("POST /v1/topics/{topic}/events", s.publish)
	handle("GET /v1/apps/{app}/dlq", s.deadLetters)
	handle("GET /v1/apps/{app}/dlq/{seq}", s.deadLetter)
	handle("POST /v1/apps/{app}/dlq/replay", s.replay)
	handle("POST /v1/apps/{app}/invoke", s.invoke)
	handle("GET /v1/invocations/{id}", s.invocation)
	handle("POST /v1/invocations/{id}/cancel", s.cancelInvocation)
}

func (s *server) publish(w http.ResponseWriter, r *http.Request) error {
	var req apitype.PublishRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	data := []byte(req.Data)
	if req.DataBase64 != nil {
		data = req.DataBase64
	}
	e := events.Event{Topic: r.PathValue("topic"), Data: data, ContentType: req.ContentType, Type: req.Type, Source: req.Source,
		ID: req.ID, PartitionKey: req.PartitionKey, TraceParent: req.TraceParent}
	if err := s.cfg.Bus.Publish(r.Context(), &e, "/noops/api/"+actor(r)); err != nil {
		return err
	}
	setDetail(r, fmt.Sprintf("publish %s to %s (%d bytes)", e.ID, e.Topic, len(e.Data)))
	writeJSON(w, http.StatusOK, apitype.PublishResult{ID: e.ID, Topic: e.Topic, TraceParent: e.TraceParent})
	return nil
}

func (s *server) deadLetters(w http.ResponseWriter, r *http.Request) error {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	list, err := s.cfg.Bus.DeadLetters(r.Context(), r.PathValue("app"), limit)
	if err != nil {
		return err
	}
	out := make([]apitype.DeadLetter, len(list))
	for i, d := range list {
		out[i] = deadLetterOut(d)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func seqOf(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return 0, errkind.Errorf(errkind.Invalid, "dead letter %q: give its number (the seq column of `noops events dlq list`)", s)
	}
	return n, nil
}

func (s *server) deadLetter(w http.ResponseWriter, r *http.Request) error {
	seq, err := seqOf(r.PathValue("seq"))
	if err != nil {
		return err
	}
	d, err := s.cfg.Bus.DeadLetter(r.Context(), r.PathValue("app"), seq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deadLetterOut(d))
	return nil
}

func (s *server) replay(w http.ResponseWriter, r *http.Request) error {
	var req apitype.ReplayRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	app := r.PathValue("app")
	if req.All == (len(req.Seqs) > 0) {
		return errkind.Errorf(errkind.Invalid, "replay: name dead letters by number, or ask for all of them")
	}
	seqs := req.Seqs
	if req.All {
		list, err := s.cfg.Bus.DeadLetters(r.Context(), app, 100000)
		if err != nil {
			return err
		}
		for _, d := range list {
			seqs = append(seqs, d.Seq)
		}
	}
	n, err := s.cfg.Bus.Replay(r.Context(), app, seqs)
	setDetail(r, fmt.Sprintf("replay %d dead letters of %s", n, app))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apitype.ReplayResult{Replayed: n})
	return nil
}

func (s *server) invoke(w http.ResponseWriter, r *http.Request) error {
	var req apitype.InvokeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	app := r.PathValue("app")
	if req.Method == "" {
		req.Method = http.MethodPost
	}
	if req.Path == "" {
		req.Path = "/"
	}
	if !strings.HasPrefix(req.Path, "/") {
		return errkind.Errorf(errkind.Invalid, "invoke: the path %q must start with /", req.Path)
	}
	ar, err := http.NewRequestWithContext(r.Context(), req.Method, req.Path, bytes.NewReader([]byte(req.Data)))
	if err != nil {
		return errkind.Errorf(errkind.Invalid, "invoke: %v", err)
	}
	for k, v := range req.Header {
		ar.Header[http.CanonicalHeaderKey(k)] = v
	}
	ar.Header.Set("X-Noops-Invoked-By", actor(r))
	if req.Async {
		inv, err := s.cfg.Bus.Invoke(r.Context(), app, ar, []byte(req.Data))
		if err != nil {
			return err
		}
		setDetail(r, "invoke "+app+" asynchronously: "+inv.ID)
		out := invocationOut(inv)
		writeJSON(w, http.StatusAccepted, apitype.InvokeResult{Invocation: &out})
		return nil
	}
	setDetail(r, "invoke "+app+" "+req.Method+" "+req.Path)
	resp, err := s.cfg.Bus.Call(r.Context(), app, ar, 8<<20)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, apitype.InvokeResult{Status: resp.Status, Header: resp.Header, Body: resp.Body})
	return nil
}

func (s *server) invocation(w http.ResponseWriter, r *http.Request) error {
	inv, err := s.cfg.Bus.Invocation(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, invocationOut(inv))
	return nil
}

func (s *server) cancelInvocation(w http.ResponseWriter, r *http.Request) error {
	inv, err := s.cfg.Bus.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	setDetail(r, "cancel invocation "+inv.ID+" of "+inv.App)
	writeJSON(w, http.StatusOK, invocationOut(inv))
	return nil
}

func deadLetterOut(d events.DeadLetter) apitype.DeadLetter {
	e := d.Event
	return apitype.DeadLetter{Seq: d.Seq, App: d.App, Origin: d.Origin, Error: d.Error, Attempts: d.Attempts, FailedAt: d.FailedAt,
		Invocation: d.Invocation, Event: apitype.CloudEvent{ID: e.ID, Source: e.Source, Type: e.Type, Topic: e.Topic, Time: e.Time,
			ContentType: e.ContentType, PartitionKey: e.PartitionKey, TraceParent: e.TraceParent, Data: e.Data}}
}

func invocationOut(inv events.Invocation) apitype.Invocation {
	var out apitype.Invocation
	b, _ := json.Marshal(inv) // the same JSON shape
	_ = json.Unmarshal(b, &out)
	return out
}
