package runc

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/moby/profiles/seccomp"
)

// TestEmbeddedSeccompIsDefault: seccomp.json is what go generate makes of
// the module's DefaultProfile (regenerate after upgrading moby/profiles).
func TestEmbeddedSeccompIsDefault(t *testing.T) {
	want, err := json.MarshalIndent(seccomp.DefaultProfile(), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal([]byte(defaultSeccomp), append(want, '\n')) {
		t.Error("seccomp.json differs from seccomp.DefaultProfile(); run go generate ./internal/runtime/runc")
	}
}

func TestOverlayOptions(t *testing.T) {
	tests := []struct {
		name    string
		layers  []string
		want    string
		wantErr bool
	}{
		{name: "one layer on the skeleton", layers: []string{"/l/a"}, want: "lowerdir=/l/a:/skel"},
		{name: "top layer first", layers: []string{"/l/bottom", "/l/mid", "/l/top"}, want: "lowerdir=/l/top:/l/mid:/l/bottom:/skel"},
		{name: "too long for a page", layers: manyLayers(200), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := overlayOptions(tc.layers, "/skel")
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("overlayOptions(%v) = %q, %v; want %q (error %v)", tc.layers, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func manyLayers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "/var/lib/noops/images/layers/sha256-0123456789abcdef"
	}
	return out
}

func TestUnescapeMount(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "/a/b", "/a/b"},
		{"space", `/a\040b`, "/a b"},
		{"tab and backslash", `/a\011\134`, "/a\t\\"},
		{"not an escape", `/a\x`, `/a\x`},
		{"short escape at the end", `/a\04`, `/a\04`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := unescapeMount(tc.in); got != tc.want {
				t.Errorf("unescapeMount(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRuncMessage(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"text", `time="2025-01-01T00:00:00Z" level=error msg="container does not exist"` + "\n", "container does not exist"},
		{"json", `{"level":"error","msg":"container not running","time":"2025-01-01T00:00:00Z"}`, "container not running"},
		{"last line wins", "first\n" + `time="x" level=error msg="second"`, "second"},
		{"bare", "something odd", "something odd"},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := runcMessage([]byte(tc.in)); got != tc.want {
				t.Errorf("runcMessage(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestUserFault(t *testing.T) {
	tests := []struct {
		msg  string
		want bool
	}{
		{`runc run failed: unable to start container process: exec: "/bin/nope": stat /bin/nope: no such file or directory`, true},
		{`runc run failed: unable to start container process: error during container init: mkdir /nowhere: read-only file system`, true},
		{`runc run failed: unable to apply cgroup configuration: mkdir /sys/fs/cgroup/memory/noops: permission denied`, false},
	}
	for _, tc := range tests {
		if got := userFault(tc.msg); got != tc.want {
			t.Errorf("userFault(%q) = %v, want %v", tc.msg, got, tc.want)
		}
	}
}

func TestLastError(t *testing.T) {
	dir := t.TempDir()
	log := dir + "/runc.log"
	content := `{"level":"warning","msg":"w","time":"t"}
{"level":"error","msg":"first","time":"t"}
{"level":"error","msg":"runc run failed: boom","time":"t"}
{"level":"debug","msg":"after","time":"t"}
`
	if err := writeAtomic(log, []byte(content)); err != nil {
		t.Fatal(err)
	}
	if got := lastError(log); got != "runc run failed: boom" {
		t.Errorf("lastError = %q, want the last error", got)
	}
	if got := lastError(dir + "/none"); got != "" {
		t.Errorf("lastError(missing) = %q, want empty", got)
	}
}
