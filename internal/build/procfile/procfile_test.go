package procfile

import (
	"reflect"
	"strings"
	"testing"

	"noops/internal/errkind"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		want map[string][]string
		err  string
	}{
		{"web and worker", "web: node server.js\nworker: node worker.js --queue jobs\n",
			map[string][]string{"web": {"node", "server.js"}, "worker": {"node", "worker.js", "--queue", "jobs"}}, ""},
		{"comments, blank lines and CRLF", "# processes\r\n\r\nweb: /app/hello serve\r\n",
			map[string][]string{"web": {"/app/hello", "serve"}}, ""},
		{"port expanded", "web: gunicorn --bind 0.0.0.0:$PORT app:app\nrelease: migrate --port=${PORT}",
			map[string][]string{"web": {"gunicorn", "--bind", "0.0.0.0:8080", "app:app"}, "release": {"migrate", "--port=8080"}}, ""},
		{"quotes and escapes", `web: run 'a b' "c $PORT d" e\ f`,
			map[string][]string{"web": {"run", "a b", "c 8080 d", "e f"}}, ""},
		{"colon in command", "web: app --addr :8080",
			map[string][]string{"web": {"app", "--addr", ":8080"}}, ""},
		{"pipe refused", "web: app | tee log", nil, "shell syntax"},
		{"and refused", "release: migrate && seed", nil, "shell syntax"},
		{"other variable refused", "web: app --db $DATABASE_URL", nil, "$DATABASE_URL"},
		{"PORTX is not PORT", "web: app $PORTX", nil, "$PORTX"},
		{"backtick refused", "web: \"app `id`\"", nil, "command substitution"},
		{"unknown type", "clock: ticker", nil, `process type "clock"`},
		{"duplicate type", "web: a\nweb: b", nil, "appears twice"},
		{"no colon", "web node server.js", nil, "line 1"},
		{"empty command", "web:   ", nil, "no command"},
		{"unclosed quote", "web: app 'x", nil, "not closed"},
		{"nothing declared", "# only a comment\n", nil, "declares no process"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tc.text, 8080)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse(%q) = %v, %v; want error containing %q", tc.text, got, err, tc.err)
				}
				if k := errkind.Of(err); k != errkind.Invalid {
					t.Errorf("Parse(%q) error kind = %v, want invalid", tc.text, k)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q) = %v, %v; want %v", tc.text, got, err, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"web: node server.js", "worker: a 'b c' \"d $PORT\"", "release: x\\ y", "web: $", "web: \"", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		procs, err := Parse(text, 8080)
		if err != nil {
			if errkind.Of(err) != errkind.Invalid {
				t.Fatalf("Parse(%q) error %v is not classified invalid", text, err)
			}
			return
		}
		for typ, args := range procs {
			if !known(typ) || len(args) == 0 {
				t.Fatalf("Parse(%q) = %v: bad entry %s", text, procs, typ)
			}
		}
	})
}
