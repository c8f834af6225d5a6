package build

import (
	"errors"
	"fmt"
	"strings"

	"noops/internal/errkind"
)

// Member is one buildpack of a group.
type Member struct {
	Buildpack string
	Optional  bool // the group passes without it; it joins when it detects
}

// Group is buildpacks that build an app together, in order (CNB's ordered
// groups): "node then procfile" builds a Node app whose Procfile names its
// processes.
type Group []Member

// DefaultOrder is the groups detection tries, first match wins. A group
// naming a buildpack that is not registered is skipped.
var DefaultOrder = []Group{
	{{Buildpack: "golang"}, {Buildpack: "procfile", Optional: true}},
	{{Buildpack: "node"}, {Buildpack: "procfile", Optional: true}},
	{{Buildpack: "python"}, {Buildpack: "procfile", Optional: true}},
	{{Buildpack: "static"}},
}

// detected is a group that passed detection: its buildpacks in order.
type detected struct {
	bps   []Buildpack
	dets  []Detection
	stack string
}

func (d detected) names() string {
	names := make([]string, len(d.bps))
	for i, bp := range d.bps {
		names[i] = bp.Name()
	}
	return strings.Join(names, "+")
}

// detect returns the first group, in order, whose required buildpacks all
// pass and whose requirements are all provided.
func detect(src string, order []Group, reg *registry) (detected, error) {
	var expects []string
	seen := map[string]bool{}
	for _, g := range order {
		d, ok, err := detectGroup(src, g, reg)
		if err != nil {
			return detected{}, err
		}
		if ok {
			return d, nil
		}
		if len(g) > 0 {
			if bp, ok := reg.get(g[0].Buildpack); ok && !seen[bp.Name()] {
				seen[bp.Name()] = true
				expects = append(expects, bp.Expects())
			}
		}
	}
	if len(expects) == 0 {
		return detected{}, errors.New("no buildpacks are registered")
	}
	return detected{}, errkind.WithHint(errkind.Invalid,
		fmt.Errorf("no recognised app in the upload: expected %s at the top of the folder", orList(expects)),
		"deploy the folder that holds your app's "+expects[0])
}

func detectGroup(src string, g Group, reg *registry) (detected, bool, error) {
	var d detected
	provided := map[string]bool{}
	for _, m := range g {
		bp, ok := reg.get(m.Buildpack)
		if !ok {
			if m.Optional {
				continue
			}
			return d, false, nil
		}
		det, err := bp.Detect(src)
		if err != nil {
			return d, false, fmt.Errorf("detecting %s: %w", bp.Name(), err)
		}
		met := true
		for _, r := range det.Requires {
			met = met && provided[r]
		}
		if !det.Pass || !met {
			if m.Optional {
				continue
			}
			return d, false, nil
		}
		for _, p := range det.Provides {
			provided[p] = true
		}
		if d.stack == "" {
			d.stack = det.Stack
		}
		d.bps = append(d.bps, bp)
		d.dets = append(d.dets, det)
	}
	return d, len(d.bps) > 0, nil
}

func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
