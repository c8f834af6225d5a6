package control

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"noops/internal/errkind"
	"noops/internal/spec"
	"noops/internal/store"
)

// Rollback makes an earlier release live again, without a rebuild. to = 0
// picks the newest release before the live one that was live once.
func (p *Plane) Rollback(ctx context.Context, app string, to int) (store.Release, error) {
	var rel store.Release
	a, err := p.store.GetApp(ctx, app)
	if err != nil {
		return rel, err
	}
	if a.Release == 0 {
		return rel, errkind.WithHint(errkind.Conflict, fmt.Errorf("%s has no live release", app), "deploy it first: noops deploy")
	}
	rels, err := p.store.ListReleases(ctx, app)
	if err != nil {
		return rel, err
	}
	if to == 0 {
		for _, r := range rels { // newest first
			if r.Number < a.Release && r.Status == store.StatusSuperseded {
				to = r.Number
				break
			}
		}
		if to == 0 {
			return rel, errkind.Errorf(errkind.Conflict, "%s has no earlier release that was live to roll back to", app)
		}
	}
	if to == a.Release {
		return rel, errkind.Errorf(errkind.Conflict, "release %d of %s is already live", to, app)
	}
	rel, err = p.store.GetRelease(ctx, app, to)
	if err != nil {
		return rel, err
	}
	done, err := p.claim(app, "a rollback")
	if err != nil {
		return rel, err
	}
	defer done()
	if err := p.store.SetReleaseStatus(ctx, app, to, store.StatusPending, fmt.Sprintf("rollback from %d", a.Release)); err != nil {
		return rel, err
	}
	rel.Reason = fmt.Sprintf("rollback from %d", a.Release)
	if err := p.super.Rollout(ctx, rel, a.Replicas, nil); err != nil {
		return rel, err
	}
	rel.Status = store.StatusLive
	p.mark(ctx, app, store.KindRollback, fmt.Sprintf("release %d is live again (rollback from %d)", to, a.Release))
	p.kickHygiene()
	return rel, nil
}

// Env returns the config vars of the app's newest release.
func (p *Plane) Env(ctx context.Context, app string) (store.Release, error) {
	if _, err := p.store.GetApp(ctx, app); err != nil {
		return store.Release{}, err
	}
	rels, err := p.store.ListReleases(ctx, app)
	if err != nil || len(rels) == 0 {
		return store.Release{App: app}, err
	}
	return rels[0], nil
}

// SetEnv changes config vars: a new release with the live release's image
// and the new environment, rolled out like a deploy.
func (p *Plane) SetEnv(ctx context.Context, app string, set map[string]string, unset []string) (store.Release, error) {
	var rel store.Release
	if len(set) == 0 && len(unset) == 0 {
		return rel, errkind.Errorf(errkind.Invalid, "nothing to change: give KEY=VALUE to set or KEY to unset")
	}
	for k := range set {
		if err := spec.ValidEnvName(k); err != nil {
			return rel, err
		}
		if k == "PORT" {
			return rel, errkind.Errorf(errkind.Invalid, "PORT is set by the platform from run.port in %s", spec.FileName)
		}
	}
	a, err := p.store.GetApp(ctx, app)
	if err != nil {
		return rel, err
	}
	if a.Release == 0 {
		return rel, errkind.WithHint(errkind.Conflict, fmt.Errorf("%s has no live release", app), "deploy it first: noops deploy")
	}
	done, err := p.claim(app, "an env change")
	if err != nil {
		return rel, err
	}
	defer done()
	live, err := p.store.GetRelease(ctx, app, a.Release)
	if err != nil {
		return rel, err
	}
	env := maps.Clone(live.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, set)
	for _, k := range unset {
		delete(env, k)
	}
	var what []string
	if len(set) > 0 {
		what = append(what, "set "+strings.Join(sortedKeys(set), ", "))
	}
	if len(unset) > 0 {
		what = append(what, "unset "+strings.Join(unset, ", "))
	}
	rel, err = p.store.CreateRelease(ctx, store.Release{App: app, Image: live.Image, SourceDigest: live.SourceDigest,
		Buildpack: live.Buildpack, Config: live.Config, Env: env, Created: p.cfg.Now(), Status: store.StatusPending,
		Reason: "env " + strings.Join(what, "; ")})
	if err != nil {
		return rel, err
	}
	if err := p.super.Rollout(ctx, rel, a.Replicas, nil); err != nil {
		return rel, err
	}
	rel.Status = store.StatusLive
	p.mark(ctx, app, store.KindConfig, fmt.Sprintf("release %d is live: env %s", rel.Number, strings.Join(what, "; ")))
	p.kickHygiene()
	return rel, nil
}
