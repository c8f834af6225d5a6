package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"noops/internal/apitype"
)

func TestBans(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	code, out, errOut := run(t, s.dir, "bans", "add", "203.0.113.7", "--for", "24h", "--reason", "scanner")
	if code != 0 || !strings.Contains(out, "banned 203.0.113.7/32 until") {
		t.Fatalf("bans add: %d %q %q", code, out, errOut)
	}
	if code, out, _ = run(t, s.dir, "bans", "add", "198.51.100.0/24"); code != 0 || !strings.Contains(out, "198.51.100.0/24 until removed") {
		t.Fatalf("bans add CIDR: %d %q", code, out)
	}
	code, out, _ = run(t, s.dir, "bans", "list", "--json")
	var list []apitype.Ban
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Fatalf("bans list --json: %d %q", code, out)
	}
	for _, b := range list {
		if b.Trigger != "manual" || b.By == "" {
			t.Errorf("ban %+v: want a manual ban with who made it", b)
		}
	}
	if code, out, _ = run(t, s.dir, "bans", "list"); code != 0 || !strings.Contains(out, "scanner") || !strings.Contains(out, "CLIENT") {
		t.Errorf("bans list: %d %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bans", "add", "not-an-ip"}, `"not-an-ip" is not an IP address or a CIDR`},
		{[]string{"bans", "add", "10.1.2.3"}, "allow"},
		{[]string{"bans", "add", "192.0.2.1", "--for", "soon"}, `duration "soon"`},
		{[]string{"bans", "remove", "192.0.2.99"}, "192.0.2.99"},
	} {
		if code, _, errOut := run(t, s.dir, tc.args...); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: %d %q, want a failure saying %q", tc.args, code, errOut, tc.want)
		}
	}
	if code, out, _ = run(t, s.dir, "bans", "remove", "203.0.113.7"); code != 0 || !strings.Contains(out, "lifted the ban of 203.0.113.7/32") {
		t.Errorf("bans remove: %d %q", code, out)
	}
	if code, out, _ = run(t, s.dir, "bans", "list", "--json"); code != 0 || strings.Count(out, `"prefix"`) != 1 {
		t.Errorf("after remove: %q", out)
	}
}
