package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	"noops/internal/runtime"
	"noops/internal/spec"
	"noops/internal/store"
)

// Identities gives sandboxes their workload identity: an SVID and the
// trust bundle in a folder mounted read-only at IdentityMount
// (identity/workload's Provider).
type Identities interface {
	Provision(id, app string, uid, gid uint32) (string, error)
	Remove(id string) error
}

// IdentityMount is where a sandbox sees its identity folder.
const IdentityMount = "/run/noops/identity"

// Firewall confines a sandbox's traffic: no other sandbox, the host only
// at the gateway, the outside only at its release's egress allow-list.
type Firewall interface {
	Admit(ctx context.Context, id string, addr netip.Addr, egress []string) error
	Forget(id string) error
}

// withIdentity provisions sandbox id's identity and mounts it into sp.
func (s *Supervisor) withIdentity(sp *runtime.Spec, app string) error {
	if s.cfg.Identities == nil {
		return nil
	}
	uid, gid := sp.UID, sp.GID
	if uid == 0 {
		uid = 65532
	}
	if gid == 0 {
		gid = uid
	}
	dir, err := s.cfg.Identities.Provision(sp.ID, app, uid, gid)
	if err != nil {
		return fmt.Errorf("giving sandbox %s its identity: %w", sp.ID, err)
	}
	sp.Mounts = append(sp.Mounts, runtime.Mount{Source: dir, Target: IdentityMount, ReadOnly: true})
	sp.Env = append(sp.Env, "NOOPS_IDENTITY_DIR="+IdentityMount)
	return nil
}

// admit opens the firewall for sandbox id at addr as rel's egress says.
func (s *Supervisor) admit(ctx context.Context, rel store.Release, id string, addr netip.Addr) error {
	if s.cfg.Firewall == nil {
		return nil
	}
	var cfg spec.Config
	if len(rel.Config) > 0 {
		if err := json.Unmarshal(rel.Config, &cfg); err != nil {
			return fmt.Errorf("decoding the egress of release %d: %w", rel.Number, err)
		}
	}
	if err := s.cfg.Firewall.Admit(ctx, id, addr, cfg.Egress); err != nil {
		return fmt.Errorf("applying the firewall of sandbox %s: %w", id, err)
	}
	return nil
}

// release forgets a sandbox's identity and firewall rules.
func (s *Supervisor) release(id string) {
	if s.cfg.Identities != nil {
		if err := s.cfg.Identities.Remove(id); err != nil {
			s.log.Warn("removing sandbox identity", "sandbox", id, "err", err)
		}
	}
	if s.cfg.Firewall != nil {
		if err := s.cfg.Firewall.Forget(id); err != nil {
			s.log.Warn("removing sandbox firewall rules", "sandbox", id, "err", err)
		}
	}
}
