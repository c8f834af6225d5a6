package build

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/errkind"
	"noops/internal/image"
)

// LayerSpec says what a buildpack's layer is for, as CNB's layer types do.
type LayerSpec struct {
	Launch bool // exported into the image at Target
	Cache  bool // kept between builds and reused while Metadata is unchanged
	Build  bool // seen by the later buildpacks of the group (Context.Layers)
	// Target is where a launch layer appears in the image; default
	// /layers/<buildpack>/<name>.
	Target string
	// Metadata is what the layer's contents depend on (a lockfile's
	// digest, a runtime's version). A cached layer whose metadata is
	// unchanged is reused as it is; any change rebuilds it from empty.
	Metadata map[string]string
}

// Layer is a folder a buildpack fills.
type Layer struct {
	Name   string
	Path   string // write the layer's files here
	Spec   LayerSpec
	Reused bool // restored unchanged from the cache: leave it as it is

	bp    string
	state string // the cache's record of it; "" for layers not cached
	file  string // where its exported tar goes
}

// layerRecord is what the cache keeps about a layer, beside its folder.
type layerRecord struct {
	Spec     LayerSpec `json:"spec"`
	Complete bool      `json:"complete"` // the build that wrote it succeeded
}

// layerSet is the layers of one build, in the order they were made.
type layerSet struct {
	cache, work string
	list        []*Layer
}

var layerName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Layer returns the buildpack's layer called name, ready to fill or, when
// it is cached with the same metadata, ready as it was (Reused).
func (bc *Context) Layer(name string, spec LayerSpec) (*Layer, error) {
	if !layerName.MatchString(name) {
		return nil, fmt.Errorf("buildpack %s: layer name %q is not valid", bc.bp, name)
	}
	if spec.Launch {
		if spec.Target == "" {
			spec.Target = path.Join("/layers", bc.bp, name)
		}
		if !path.IsAbs(spec.Target) || path.Clean(spec.Target) != spec.Target || spec.Target == "/" {
			return nil, fmt.Errorf("buildpack %s: layer %s has target %q, want a clean absolute path", bc.bp, name, spec.Target)
		}
	}
	for _, l := range bc.layers.list {
		if l.bp == bc.bp && l.Name == name {
			return nil, fmt.Errorf("buildpack %s: layer %s asked for twice", bc.bp, name)
		}
	}
	l := &Layer{Name: name, Spec: spec, bp: bc.bp}
	if spec.Cache {
		dir := filepath.Join(bc.layers.cache, bc.bp)
		l.Path = filepath.Join(dir, name)
		l.state = l.Path + ".json"
		l.file = l.Path + ".tar.gz"
		if old, err := readRecord(l.state); err == nil && old.Complete && sameSpec(old.Spec, spec) {
			if _, err := os.Stat(l.Path); err == nil {
				l.Reused = true
			}
		}
		if !l.Reused {
			for _, p := range []string{l.state, l.file, l.Path} {
				if err := os.RemoveAll(p); err != nil {
					return nil, errkind.E(errkind.Unavailable, fmt.Errorf("clearing cached layer %s: %w", name, err))
				}
			}
		}
	} else {
		l.Path = filepath.Join(bc.layers.work, bc.bp, name)
		l.file = l.Path + ".tar.gz"
	}
	if err := os.MkdirAll(l.Path, 0o755); err != nil {
		return nil, errkind.E(errkind.Unavailable, fmt.Errorf("creating layer %s: %w", name, err))
	}
	bc.layers.list = append(bc.layers.list, l)
	return l, nil
}

// Layers returns the build layers that earlier buildpacks of the group
// made, by name.
func (bc *Context) Layers() map[string]*Layer {
	out := map[string]*Layer{}
	for _, l := range bc.layers.list {
		if l.Spec.Build && l.bp != bc.bp {
			out[l.Name] = l
		}
	}
	return out
}

func sameSpec(a, b LayerSpec) bool {
	return a.Launch == b.Launch && a.Build == b.Build && a.Target == b.Target && maps.Equal(a.Metadata, b.Metadata)
}

func readRecord(p string) (layerRecord, error) {
	var r layerRecord
	b, err := os.ReadFile(p)
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

// commit records the cached layers of a successful build as complete and
// removes cached layers this build did not use.
func (s *layerSet) commit() error {
	used := map[string]bool{}
	for _, l := range s.list {
		if l.state == "" {
			continue
		}
		used[l.Path] = true
		b, err := json.Marshal(layerRecord{Spec: l.Spec, Complete: true})
		if err != nil {
			return err
		}
		if err := os.WriteFile(l.state, b, 0o600); err != nil {
			return fmt.Errorf("recording cached layer %s: %w", l.Name, err)
		}
	}
	bps, err := os.ReadDir(s.cache)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, bp := range bps {
		dir := filepath.Join(s.cache, bp.Name())
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() && !used[filepath.Join(dir, e.Name())] {
				base := filepath.Join(dir, e.Name())
				for _, p := range []string{base, base + ".json", base + ".tar.gz"} {
					_ = os.RemoveAll(p)
				}
			}
		}
	}
	return nil
}

// export returns the image layers of the launch layers, in the order they
// were made. A reused layer whose tar was kept is not written again.
func (s *layerSet) export() ([]v1.Layer, []*Layer, error) {
	var out []v1.Layer
	var which []*Layer
	for _, l := range s.list {
		if !l.Spec.Launch {
			continue
		}
		var il v1.Layer
		var err error
		if l.Reused {
			if _, serr := os.Stat(l.file); serr == nil {
				il, err = image.LayerFromFile(l.file)
			}
		}
		if il == nil && err == nil {
			il, err = image.LayerFileFromDir(l.Path, l.Spec.Target, l.file)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("exporting layer %s of %s: %w", l.Name, l.bp, err)
		}
		out = append(out, il)
		which = append(which, l)
	}
	return out, which, nil
}
