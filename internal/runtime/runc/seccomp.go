package runc

import (
	_ "embed"
	"fmt"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

//go:generate go run gen_seccomp.go

// defaultSeccomp is Docker's default seccomp profile, an allow-list
// (every syscall not listed fails with EPERM), as
// github.com/moby/profiles/seccomp defines it. It is embedded as JSON so
// that the profile sandboxes get is reviewable in the source tree; a test
// checks it still equals seccomp.DefaultProfile() (run go generate after
// upgrading the module).
//
//go:embed seccomp.json
var defaultSeccomp string

// seccompFor converts the profile for rs: rules conditional on
// capabilities, architecture and kernel version are resolved, so rs's
// capabilities must be final. With no capabilities, no capability-gated
// syscall is allowed.
func seccompFor(rs *specs.Spec) (*specs.LinuxSeccomp, error) {
	sc, err := seccomp.LoadProfile(defaultSeccomp, rs)
	if err != nil {
		return nil, fmt.Errorf("loading the default seccomp profile: %w", err)
	}
	return sc, nil
}
