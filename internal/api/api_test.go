package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"noops/internal/api"
	"noops/internal/api/apitest"
	"noops/internal/apitype"
	"noops/internal/control"
	"noops/internal/errkind"
	"noops/internal/store"
	"noops/internal/store/sqlite"
)

var testNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// apiEnv is one API handler over a fake plane, fake logs and a real
// SQLite audit log.
type apiEnv struct {
	h     http.Handler
	plane *apitest.Plane
	logs  *apitest.Logs
	audit *sqlite.DB
	log   *syncBuffer
}

func newAPI(t *testing.T) *apiEnv {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	e := &apiEnv{plane: apitest.NewPlane(testNow), logs: &apitest.Logs{Lines: map[string][]string{}}, audit: db, log: &syncBuffer{}}
	e.plane.AddApp("web", 2)
	e.h = api.Handler(api.Config{
		Plane:  e.plane,
		Audit:  db,
		Logs:   e.logs,
		Status: func() apitype.Status { return apitype.Status{Version: "test", Domain: "noops.test", Pid: 42} },
		CARoot: func() []byte { return []byte("-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n") },
		Logger: slog.New(slog.NewTextHandler(e.log, nil)),
		Now:    func() time.Time { return testNow },
	})
	return e
}

func (e *apiEnv) do(method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return w
}

func (e *apiEnv) auditLog(t *testing.T) []store.AuditEntry {
	t.Helper()
	rows, err := e.audit.ListAudit(context.Background(), 0, 1000)
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	return rows
}

func wireError(t *testing.T, w *httptest.ResponseRecorder) apitype.Error {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var e apitype.Error
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("decoding error body: %v", err)
	}
	return e
}

func TestErrorKindToStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind   errkind.Kind
		status int
	}{
		{errkind.Invalid, http.StatusBadRequest},
		{errkind.NotFound, http.StatusNotFound},
		{errkind.Conflict, http.StatusConflict},
		{errkind.Permission, http.StatusForbidden},
		{errkind.Unavailable, http.StatusServiceUnavailable},
		{errkind.Internal, http.StatusInternalServerError},
		{errkind.Kind(99), http.StatusInternalServerError}, // an unknown kind is treated as internal
	}
	for _, tc := range tests {
		t.Run(tc.kind.String(), func(t *testing.T) {
			t.Parallel()
			e := newAPI(t)
			e.plane.Err = errkind.WithHint(tc.kind, errors.New("the "+tc.kind.String()+" message"), "the "+tc.kind.String()+" hint")
			for _, call := range []struct{ method, path, body string }{
				{"GET", "/v1/apps", ""},
				{"GET", "/v1/apps/web", ""},
				{"POST", "/v1/apps/web/scale", `{"replicas":2}`},
			} {
				w := e.do(call.method, call.path, call.body)
				if w.Code != tc.status {
					t.Errorf("%s %s with a %v error: status %d, want %d", call.method, call.path, tc.kind, w.Code, tc.status)
				}
				got := wireError(t, w)
				if got.Kind != tc.kind.String() {
					t.Errorf("%s %s: error kind %q, want %q", call.method, call.path, got.Kind, tc.kind.String())
				}
				if tc.status != http.StatusInternalServerError {
					want := apitype.Error{Kind: tc.kind.String(), Message: "the " + tc.kind.String() + " message", Hint: "the " + tc.kind.String() + " hint"}
					if got != want {
						t.Errorf("%s %s: error body %+v, want %+v", call.method, call.path, got, want)
					}
				}
			}
		})
	}
}

func TestInternalErrorNotLeaked(t *testing.T) {
	t.Parallel()
	const secret = "/var/lib/noops/state.db: database disk image is malformed"
	tests := []struct {
		name    string
		err     error
		wantMsg string // "" means any message without the secret
	}{
		{"unclassified", fmt.Errorf("reading apps from %s", secret), ""},
		{"classified internal with a hint", errkind.WithHint(errkind.Internal, errors.New(secret), "internal hint "+secret), ""},
		{"wrapped", fmt.Errorf("listing: %w", fmt.Errorf("querying %s: %w", secret, io.ErrUnexpectedEOF)), ""},
		{"cancelled", fmt.Errorf("querying %s: %w", secret, context.Canceled), "the request was cancelled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAPI(t)
			e.plane.Err = tc.err
			w := e.do("GET", "/v1/apps", "")
			if w.Code != http.StatusInternalServerError {
				t.Fatalf("GET /v1/apps with an internal error: status %d, want 500", w.Code)
			}
			got := wireError(t, w)
			if got.Kind != "internal" {
				t.Errorf("error kind = %q, want internal", got.Kind)
			}
			if strings.Contains(got.Message, "malformed") || strings.Contains(got.Message, "/var/lib") || got.Message == "" {
				t.Errorf("error message = %q, want a generic one without the internal cause", got.Message)
			}
			if tc.wantMsg != "" && got.Message != tc.wantMsg {
				t.Errorf("error message = %q, want %q", got.Message, tc.wantMsg)
			}
			if got.Hint != "the server log has the details" {
				t.Errorf("error hint = %q, want %q", got.Hint, "the server log has the details")
			}
			if log := e.log.String(); !strings.Contains(log, "malformed") || !strings.Contains(log, "level=ERROR") {
				t.Errorf("server log = %q, want the cause logged as an error", log)
			}
		})
	}
}

func TestClassifiedErrorNotLogged(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	w := e.do("GET", "/v1/apps/nope", "")
	if w.Code != http.StatusNotFound {
		t.Fatalf("GET /v1/apps/nope: status %d, want 404", w.Code)
	}
	if log := e.log.String(); log != "" {
		t.Errorf("server log after a not-found = %q, want nothing (the client was told)", log)
	}
}

func TestUnknownEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path string
		audited            bool
	}{
		{"unknown GET", "GET", "/v1/nope", false},
		{"unknown POST", "POST", "/v1/nope", true},
		{"no version", "GET", "/apps", false},
		{"root", "GET", "/", false},
		{"too deep", "GET", "/v1/apps/web/releases/3/extra", false},
		{"wrong method on a known path", "PUT", "/v1/apps/web", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAPI(t)
			w := e.do(tc.method, tc.path, "")
			if w.Code != http.StatusNotFound {
				t.Fatalf("%s %s: status %d, want 404", tc.method, tc.path, w.Code)
			}
			got := wireError(t, w)
			if got.Kind != "not_found" || !strings.Contains(got.Message, tc.path) {
				t.Errorf("%s %s: error %+v, want not_found naming the path", tc.method, tc.path, got)
			}
			rows := e.auditLog(t)
			if !tc.audited {
				if len(rows) != 0 {
					t.Errorf("%s %s: audit log %+v, want empty", tc.method, tc.path, rows)
				}
				return
			}
			if len(rows) != 1 || rows[0].Action != tc.method+" "+tc.path || rows[0].Status != 404 || rows[0].Target != "" {
				t.Errorf("%s %s: audit log %+v, want one record of the call with status 404", tc.method, tc.path, rows)
			}
		})
	}
}

func TestStrictDecoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, body string
		wantMsg          string
	}{
		{"unknown field in scale", "/v1/apps/web/scale", `{"replicas":2,"replica":3}`, `unknown field "replica"`},
		{"wrong type in scale", "/v1/apps/web/scale", `{"replicas":"two"}`, "replicas"},
		{"not JSON", "/v1/apps/web/scale", `replicas=2`, "decoding request body"},
		{"empty body", "/v1/apps/web/scale", ``, "decoding request body"},
		{"unknown field in rollback", "/v1/apps/web/rollback", `{"to":1,"force":true}`, `unknown field "force"`},
		{"unknown field in env", "/v1/apps/web/env", `{"set":{"A":"2"},"remove":["B"]}`, `unknown field "remove"`},
		{"wrong env shape", "/v1/apps/web/env", `{"set":["A=2"]}`, "decoding request body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAPI(t)
			w := e.do("POST", tc.path, tc.body)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("POST %s %s: status %d, want 400", tc.path, tc.body, w.Code)
			}
			got := wireError(t, w)
			if got.Kind != "invalid" || !strings.Contains(got.Message, tc.wantMsg) {
				t.Errorf("POST %s %s: error %+v, want invalid saying %q", tc.path, tc.body, got, tc.wantMsg)
			}
			for _, c := range e.plane.Calls() {
				if !strings.HasPrefix(c, "App ") {
					t.Errorf("POST %s %s reached the plane: %s", tc.path, tc.body, c)
				}
			}
		})
	}
}

func TestMutatingCallsAudited(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantAction, wantTarget   string
		wantDetail               string // "" means any
	}{
		{"delete", "DELETE", "/v1/apps/web", "", 204, "DELETE /v1/apps/{app}", "app:web", ""},
		{"scale", "POST", "/v1/apps/web/scale", `{"replicas":3}`, 200, "POST /v1/apps/{app}/scale", "app:web", "replicas=3"},
		{"scale refused", "POST", "/v1/apps/web/scale", `{"replicas":500}`, 400, "POST /v1/apps/{app}/scale", "app:web", "replicas=500"},
		{"scale of a missing app", "POST", "/v1/apps/ghost/scale", `{"replicas":1}`, 404, "POST /v1/apps/{app}/scale", "app:ghost", "replicas=1"},
		{"rollback", "POST", "/v1/apps/web/rollback", `{"to":1}`, 200, "POST /v1/apps/{app}/rollback", "app:web", "rollback to 1"},
		{"rollback to a missing release", "POST", "/v1/apps/web/rollback", `{"to":9}`, 404, "POST /v1/apps/{app}/rollback", "app:web", "web has no release 9"},
		{"bad body", "POST", "/v1/apps/web/rollback", `{"to":"x"}`, 400, "POST /v1/apps/{app}/rollback", "app:web", ""},
		{"env set", "POST", "/v1/apps/web/env", `{"set":{"DB_PASSWORD":"hunter2","API_KEY":"s3cr3t"},"unset":["OLD"]}`, 200,
			"POST /v1/apps/{app}/env", "app:web", "set API_KEY,DB_PASSWORD unset OLD"},
		{"env set on a missing app", "POST", "/v1/apps/ghost/env", `{"set":{"DB_PASSWORD":"hunter2"}}`, 404,
			"POST /v1/apps/{app}/env", "app:ghost", "set DB_PASSWORD unset "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAPI(t)
			w := e.do(tc.method, tc.path, tc.body)
			if w.Code != tc.wantStatus {
				t.Fatalf("%s %s: status %d, want %d (body %s)", tc.method, tc.path, w.Code, tc.wantStatus, w.Body)
			}
			rows := e.auditLog(t)
			if len(rows) != 1 {
				t.Fatalf("%s %s: %d audit records, want 1: %+v", tc.method, tc.path, len(rows), rows)
			}
			r := rows[0]
			if r.Action != tc.wantAction || r.Target != tc.wantTarget || r.Status != tc.wantStatus {
				t.Errorf("%s %s: audit record (action %q, target %q, status %d), want (%q, %q, %d)",
					tc.method, tc.path, r.Action, r.Target, r.Status, tc.wantAction, tc.wantTarget, tc.wantStatus)
			}
			if tc.wantDetail != "" && r.Detail != tc.wantDetail {
				t.Errorf("%s %s: audit detail %q, want %q", tc.method, tc.path, r.Detail, tc.wantDetail)
			}
			if tc.wantStatus >= 400 && r.Detail == "" {
				t.Errorf("%s %s: audit detail of a failure is empty, want the reason", tc.method, tc.path)
			}
			if !r.Time.Equal(testNow) {
				t.Errorf("%s %s: audit time %v, want %v", tc.method, tc.path, r.Time, testNow)
			}
			if r.Actor != "unknown" { // no Unix socket behind an httptest request
				t.Errorf("%s %s: audit actor %q, want unknown", tc.method, tc.path, r.Actor)
			}
			for _, secret := range []string{"hunter2", "s3cr3t"} {
				if strings.Contains(r.Detail, secret) {
					t.Errorf("%s %s: audit detail %q holds the env value %q", tc.method, tc.path, r.Detail, secret)
				}
			}
		})
	}
}

func TestEnvValuesNeverAudited(t *testing.T) {
	t.Parallel()
	// However the call ends, the audit record may name keys but not values.
	tests := []struct{ name, body string }{
		{"accepted", `{"set":{"TOKEN":"hunter2"}}`},
		{"unknown field", `{"set":{"TOKEN":"hunter2"},"extra":1}`},
		{"wrong type", `{"set":{"TOKEN":"hunter2"},"unset":"TOKEN"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAPI(t)
			e.do("POST", "/v1/apps/web/env", tc.body)
			// and once more when the plane refuses the change
			e.plane.Lock()
			e.plane.Fail["web"] = errkind.Errorf(errkind.Conflict, "a deploy of web is in progress")
			e.plane.Unlock()
			e.do("POST", "/v1/apps/web/env", tc.body)
			rows := e.auditLog(t)
			if len(rows) != 2 {
				t.Fatalf("POST env %s twice: %d audit records, want 2", tc.body, len(rows))
			}
			for _, r := range rows {
				if strings.Contains(r.Detail, "hunter2") {
					t.Errorf("POST env %s: audit detail %q holds the value", tc.body, r.Detail)
				}
			}
		})
	}
}

func TestReadsNotAudited(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.logs.Lines["web"] = []string{`{"line":"hi"}`}
	for _, path := range []string{
		"/v1/status", "/v1/ca/root", "/v1/audit", "/v1/apps", "/v1/apps/web", "/v1/apps/web/releases",
		"/v1/apps/web/ps", "/v1/apps/web/env", "/v1/apps/web/logs", "/v1/apps/ghost", "/v1/apps/web/logs?lines=-1",
	} {
		e.do("GET", path, "")
		e.do("HEAD", path, "")
	}
	if rows := e.auditLog(t); len(rows) != 0 {
		t.Errorf("audit log after reads = %+v, want empty", rows)
	}
}

func TestReads(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	tests := []struct {
		path string
		into any
		want any
	}{
		{"/v1/status", &apitype.Status{}, &apitype.Status{Version: "test", Domain: "noops.test", Pid: 42}},
		{"/v1/apps", &[]apitype.App{}, &[]apitype.App{{Name: "web", Created: testNow, Release: 2, Replicas: 1, URL: "https://web.noops.test/", Healthy: 1}}},
		{"/v1/apps/web", &apitype.App{}, &apitype.App{Name: "web", Created: testNow, Release: 2, Replicas: 1, URL: "https://web.noops.test/", Healthy: 1}},
		{"/v1/apps/web/env", &apitype.Env{}, &apitype.Env{App: "web", Release: 2, Env: map[string]string{"A": "1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			w := e.do("GET", tc.path, "")
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: status %d, want 200", tc.path, w.Code)
			}
			if err := json.Unmarshal(w.Body.Bytes(), tc.into); err != nil {
				t.Fatalf("GET %s: decoding %s: %v", tc.path, w.Body, err)
			}
			if !reflect.DeepEqual(tc.into, tc.want) {
				t.Errorf("GET %s = %+v, want %+v", tc.path, tc.into, tc.want)
			}
		})
	}
	w := e.do("GET", "/v1/apps/web/releases", "")
	var rels []apitype.Release
	if err := json.Unmarshal(w.Body.Bytes(), &rels); err != nil || len(rels) != 2 || rels[0].Number != 2 {
		t.Errorf("GET releases = %s (%v), want releases 2 and 1", w.Body, err)
	} else if !reflect.DeepEqual(rels[0].EnvKeys, []string{"A"}) || strings.Contains(w.Body.String(), `"1"`) {
		t.Errorf("GET releases = %s, want env keys without values", w.Body)
	}
	w = e.do("GET", "/v1/ca/root", "")
	if ct := w.Header().Get("Content-Type"); ct != "application/x-pem-file" || !strings.HasPrefix(w.Body.String(), "-----BEGIN CERTIFICATE-----") {
		t.Errorf("GET /v1/ca/root = %q (%s), want the PEM", w.Body, ct)
	}
}

func TestAuditQueryValidation(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	for _, q := range []string{"since=-1", "limit=-5", "since=abc", "limit=1.5"} {
		w := e.do("GET", "/v1/audit?"+q, "")
		if w.Code != http.StatusBadRequest {
			t.Errorf("GET /v1/audit?%s: status %d, want 400", q, w.Code)
		}
	}
	e.do("POST", "/v1/apps/web/scale", `{"replicas":2}`)
	e.do("POST", "/v1/apps/web/scale", `{"replicas":3}`)
	w := e.do("GET", "/v1/audit?since=1&limit=10", "")
	var rows []apitype.AuditEntry
	if err := json.Unmarshal(w.Body.Bytes(), &rows); err != nil || len(rows) != 1 || rows[0].Detail != "replicas=3" {
		t.Errorf("GET /v1/audit?since=1 = %s (%v), want only the second record", w.Body, err)
	}
}

func TestDeployRefusesNonGzip(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, ct string }{
		{"json", "application/json"},
		{"plain tar", "application/x-tar"},
		{"none", ""},
		{"gzip with parameters", "application/gzip; charset=utf-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAPI(t)
			w := e.do("POST", "/v1/apps/web/deploy", "not an archive", "Content-Type", tc.ct)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("deploy with Content-Type %q: status %d, want 400", tc.ct, w.Code)
			}
			got := wireError(t, w)
			if got.Kind != "invalid" || !strings.Contains(got.Message, "application/gzip") {
				t.Errorf("deploy with Content-Type %q: error %+v, want invalid naming application/gzip", tc.ct, got)
			}
			for _, c := range e.plane.Calls() {
				if strings.HasPrefix(c, "Deploy") {
					t.Errorf("deploy with Content-Type %q reached the plane", tc.ct)
				}
			}
			if rows := e.auditLog(t); len(rows) != 1 || rows[0].Status != 400 || rows[0].Action != "POST /v1/apps/{app}/deploy" {
				t.Errorf("deploy with Content-Type %q: audit %+v, want one record with status 400", tc.ct, rows)
			}
		})
	}
}

// readEvents decodes a deploy's NDJSON stream to its end.
func readEvents(t *testing.T, r io.Reader) []apitype.DeployEvent {
	t.Helper()
	var evs []apitype.DeployEvent
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var ev apitype.DeployEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("decoding event %q: %v", sc.Bytes(), err)
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	return evs
}

func TestDeployStreamsFullDuplex(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The body is a pipe: the first event must arrive before the upload
	// is finished, which only works when the server streams full duplex.
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/apps/fresh/deploy", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/gzip")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST deploy: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("POST deploy: status %d, Content-Type %q, want 200 application/x-ndjson", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadBytes('\n')
	if err != nil {
		t.Fatalf("reading the first event before the upload ends: %v", err)
	}
	var ev apitype.DeployEvent
	if err := json.Unmarshal(first, &ev); err != nil || ev.Type != "stage" || ev.Stage != "receiving" {
		t.Fatalf("first event = %s (%v), want stage receiving", first, err)
	}
	payload := strings.Repeat("0123456789", 10_000)
	if _, err := io.WriteString(pw, payload); err != nil {
		t.Fatalf("uploading after the first event: %v", err)
	}
	pw.Close()
	evs := readEvents(t, br)

	want := []apitype.DeployEvent{
		{Type: "log", Line: fmt.Sprintf("received %d bytes", len(payload))},
		{Type: "stage", Stage: "building"},
	}
	if len(evs) != 3 || !reflect.DeepEqual(evs[:2], want) {
		t.Fatalf("events after the first = %+v, want %+v then a result", evs, want)
	}
	res := evs[2]
	if res.Type != "result" || res.Release == nil || res.Release.App != "fresh" || res.Release.Number != 1 || res.URL != "https://fresh.noops.test/" {
		t.Errorf("last event = %+v, want the result for fresh v1 with its URL", res)
	}
	rows := e.auditLog(t)
	if len(rows) != 1 {
		t.Fatalf("audit log = %+v, want one record", rows)
	}
	if r := rows[0]; r.Action != "POST /v1/apps/{app}/deploy" || r.Target != "app:fresh" || r.Status != 200 || r.Detail != "release 1" {
		t.Errorf("audit record = %+v, want the deploy of fresh, status 200, detail %q", r, "release 1")
	}
}

func TestDeployErrorEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		rel        store.Release
		err        error
		wantStatus int
		wantErr    apitype.Error // Message "" means a generic one
	}{
		{"invalid", store.Release{App: "web", Number: 3}, errkind.WithHint(errkind.Invalid, errors.New("release 3 of web failed: exit 1"), "see `noops logs web`"),
			400, apitype.Error{Kind: "invalid", Message: "release 3 of web failed: exit 1", Hint: "see `noops logs web`"}},
		{"conflict", store.Release{}, errkind.WithHint(errkind.Conflict, errors.New("a deploy of web is in progress"), "wait for it"),
			409, apitype.Error{Kind: "conflict", Message: "a deploy of web is in progress", Hint: "wait for it"}},
		{"unavailable", store.Release{}, errkind.Errorf(errkind.Unavailable, "the disk is full"),
			503, apitype.Error{Kind: "unavailable", Message: "the disk is full"}},
		{"internal", store.Release{}, errors.New("writing /var/lib/noops/images/blob: input/output error"),
			500, apitype.Error{Kind: "internal", Hint: "the server log has the details"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAPI(t)
			e.plane.DeployFunc = func(ctx context.Context, req control.DeployRequest, out control.Progress) (store.Release, error) {
				out.Stage("receiving")
				io.Copy(io.Discard, req.Archive)
				out.Log("building…")
				return tc.rel, tc.err
			}
			srv := httptest.NewServer(e.h)
			defer srv.Close()
			req, _ := http.NewRequest("POST", srv.URL+"/v1/apps/web/deploy", strings.NewReader("gzip bytes"))
			req.Header.Set("Content-Type", "application/gzip")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatalf("POST deploy: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("POST deploy: status %d, want 200 (the stream had started)", resp.StatusCode)
			}
			evs := readEvents(t, resp.Body)
			if len(evs) != 3 || evs[0].Stage != "receiving" || evs[1].Line != "building…" {
				t.Fatalf("events = %+v, want stage, log, error", evs)
			}
			last := evs[2]
			if last.Type != "error" || last.Error == nil {
				t.Fatalf("last event = %+v, want an error", last)
			}
			got := *last.Error
			if tc.wantErr.Message == "" {
				if strings.Contains(got.Message, "/var/lib") || got.Message == "" {
					t.Errorf("internal error event message = %q, want a generic one", got.Message)
				}
				got.Message = ""
			}
			if got != tc.wantErr {
				t.Errorf("error event = %+v, want %+v", got, tc.wantErr)
			}
			rows := e.auditLog(t)
			if len(rows) != 1 {
				t.Fatalf("audit log = %+v, want one record", rows)
			}
			if r := rows[0]; r.Status != tc.wantStatus || r.Target != "app:web" || r.Detail != tc.err.Error() {
				t.Errorf("audit record = %+v, want status %d, target app:web, detail %q", r, tc.wantStatus, tc.err.Error())
			}
		})
	}
}

// TestDeployRefusedBeforeUpload: a deploy that fails before it reads the
// upload answers with an error event, and the server stays healthy
// (net/http panics on the next read of a full-duplex connection whose body
// was left unread, golang/go#68560).
func TestDeployRefusedBeforeUpload(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	e.plane.Fail["web"] = errkind.WithHint(errkind.Conflict, errors.New("a deploy of web is in progress"), "wait for it to finish")
	httpLog := &syncBuffer{}
	srv := httptest.NewUnstartedServer(e.h)
	srv.Config.ErrorLog = log.New(httpLog, "", 0)
	srv.Start()
	defer srv.Close()
	for i := range 10 {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/apps/web/deploy", strings.NewReader(strings.Repeat("x", 4096)))
		req.Header.Set("Content-Type", "application/gzip")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("deploy %d: %v", i, err)
		}
		evs := readEvents(t, resp.Body)
		resp.Body.Close()
		if len(evs) != 1 || evs[0].Type != "error" || evs[0].Error.Kind != "conflict" {
			t.Fatalf("deploy %d: events %+v, want one conflict error", i, evs)
		}
	}
	srv.Close()
	if l := httpLog.String(); l != "" {
		t.Errorf("the HTTP server logged:\n%s", l)
	}
	if rows := e.auditLog(t); len(rows) != 10 || rows[0].Status != http.StatusConflict {
		t.Errorf("audit log has %d records (first %+v), want 10 with status 409", len(rows), rows[0])
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	texts := []string{"one", "two", "three"}
	line := func(i int) string {
		t := apitest.LogStart.Add(time.Duration(i) * time.Second).Format(time.RFC3339)
		return `{"time":"` + t + `","app":"web","stream":"stdout","sandbox":"web-1-0","line":"` + texts[i] + `"}` + "\n"
	}
	tests := []struct {
		name       string
		query      string
		wantStatus int
		wantBody   string
		wantAsked  []string
		wantErr    string
	}{
		{"default count", "", 200, line(0) + line(1) + line(2), []string{"web 100 false"}, ""},
		{"last two", "?lines=2", 200, line(1) + line(2), []string{"web 2 false"}, ""},
		{"zero", "?lines=0", 200, "", []string{"web 0 false"}, ""},
		{"all", "?lines=all", 200, line(0) + line(1) + line(2), []string{"web -1 false"}, ""},
		{"follow", "?lines=1&follow=1", 200, line(2), []string{"web 1 true"}, ""},
		{"grep", "?grep=tw", 200, line(1), []string{"web 100 false"}, ""},
		{"from", "?from=" + apitest.LogStart.Add(time.Second).Format(time.RFC3339), 200, line(1) + line(2), []string{"web -1 false"}, ""},
		{"negative", "?lines=-1", 400, "", nil, "lines"},
		{"not a number", "?lines=ten", 400, "", nil, "lines"},
		{"bad time", "?from=yesterday", 400, "", nil, "from"},
		{"bad regexp", "?regexp=(", 400, "", nil, "regexp"},
		{"bad field", "?field=status", 400, "", nil, "NAME=VALUE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAPI(t)
			e.logs.Lines["web"] = texts
			w := e.do("GET", "/v1/apps/web/logs"+tc.query, "")
			if w.Code != tc.wantStatus {
				t.Fatalf("GET logs%s: status %d, want %d", tc.query, w.Code, tc.wantStatus)
			}
			if tc.wantStatus == 200 {
				if w.Body.String() != tc.wantBody {
					t.Errorf("GET logs%s = %q, want %q", tc.query, w.Body, tc.wantBody)
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/x-ndjson" {
					t.Errorf("GET logs%s Content-Type = %q, want application/x-ndjson", tc.query, ct)
				}
			} else if got := wireError(t, w); got.Kind != "invalid" || !strings.Contains(got.Message, tc.wantErr) {
				t.Errorf("GET logs%s: error %+v, want invalid naming %s", tc.query, got, tc.wantErr)
			}
			if got := e.logs.AskedFor(); !reflect.DeepEqual(got, tc.wantAsked) {
				t.Errorf("GET logs%s asked for %q, want %q", tc.query, got, tc.wantAsked)
			}
		})
	}
}

func TestLogsOfMissingApp(t *testing.T) {
	t.Parallel()
	e := newAPI(t)
	w := e.do("GET", "/v1/apps/ghost/logs", "")
	if w.Code != http.StatusNotFound {
		t.Fatalf("GET /v1/apps/ghost/logs: status %d, want 404", w.Code)
	}
	if got := wireError(t, w); got.Kind != "not_found" || got.Hint == "" {
		t.Errorf("GET /v1/apps/ghost/logs: error %+v, want not_found with a hint", got)
	}
	if asked := e.logs.AskedFor(); len(asked) != 0 {
		t.Errorf("logs of a missing app asked Tail for %q, want nothing", asked)
	}
}
