package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"noops/internal/apitype"
)

// FuzzRequestBodies sends arbitrary bodies to every endpoint that decodes
// JSON. Whatever arrives, the API answers with a JSON error of a client
// kind or a success, never a 5xx and never a panic.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{
		`{"replicas":2}`, `{"to":1}`, `{"set":{"A":"1"},"unset":["B"]}`,
		`{"replicas":-1}`, `{"replicas":1e400}`, `{"to":"x"}`, `{"set":{"":""}}`,
		`{}`, `[]`, `null`, ``, `{"replicas":2}{"replicas":3}`, `{"bogus":1}`, "\xff\xfe",
	} {
		for _, path := range []string{"/scale", "/rollback", "/env"} {
			f.Add(path, s)
		}
	}
	f.Fuzz(func(t *testing.T, path, body string) {
		switch path {
		case "/scale", "/rollback", "/env":
		default:
			return
		}
		e := newAPI(t)
		w := e.do(http.MethodPost, "/v1/apps/web"+path, body)
		if w.Code >= 500 {
			t.Fatalf("POST %s %q = %d %s, want a client error or success", path, body, w.Code, w.Body)
		}
		if w.Code >= 300 {
			var ae apitype.Error
			if err := json.Unmarshal(w.Body.Bytes(), &ae); err != nil || ae.Message == "" || strings.Contains(ae.Message, "\n") {
				t.Fatalf("POST %s %q = %d with body %q, want a one-line JSON error", path, body, w.Code, w.Body)
			}
		}
	})
}
