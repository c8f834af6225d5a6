package runc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"noops/internal/errkind"
	"noops/internal/runtime"
)

// checkHost checks what spec needs of this machine, for Start and Run
// alike: its layers, network namespace and mount sources exist. Errors are
// errkind.Invalid.
func checkHost(spec runtime.Spec) error {
	invalid := func(format string, args ...any) error {
		return errkind.Errorf(errkind.Invalid, "sandbox %s: "+format, append([]any{spec.ID}, args...)...)
	}
	if len(spec.Layers) == 0 {
		return invalid("no image layers")
	}
	for _, l := range spec.Layers {
		if !filepath.IsAbs(l) || strings.ContainsAny(l, ":,\n") {
			return invalid("layer %q: want an absolute path without ':' or ','", l)
		}
		if fi, err := os.Stat(l); err != nil || !fi.IsDir() {
			return invalid("layer %q is not a folder", l)
		}
	}
	if spec.NetNS != "" {
		if !filepath.IsAbs(spec.NetNS) {
			return invalid("network namespace %q is not an absolute path", spec.NetNS)
		}
		if _, err := os.Stat(spec.NetNS); err != nil {
			return invalid("network namespace: %v", err)
		}
	}
	for _, m := range spec.Mounts {
		if _, err := os.Stat(m.Source); err != nil {
			return invalid("mount on %s: %v", m.Target, err)
		}
	}
	return nil
}

// ociSpec is OCISpec for this driver and machine.
func (d *Driver) ociSpec(spec runtime.Spec) (*specs.Spec, error) {
	oci, err := OCISpec(spec, d.cfg.CgroupParent)
	if err != nil {
		return nil, err
	}
	if !swapAccounting() {
		oci.Linux.Resources.Memory.Swap = nil // the kernel cannot limit it; runc would fail
	}
	return oci, nil
}

// makeBundle creates the empty bundle folder of sandbox id; a sandbox or
// runc container of that name is a conflict.
func (d *Driver) makeBundle(id string) (string, error) {
	bundle := d.bundle(id)
	if _, err := os.Stat(filepath.Join(d.runcRoot, id)); err == nil {
		return "", errkind.Errorf(errkind.Conflict, "runc already has a container of that name")
	}
	if err := os.Mkdir(bundle, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", errkind.Errorf(errkind.Conflict, "it already exists")
		}
		return "", err
	}
	return bundle, nil
}

// fillBundle writes config.json, mounts the root and writes sandbox.json,
// after which Delete (or remove) can undo it.
func (d *Driver) fillBundle(spec runtime.Spec, bundle string, oci *specs.Spec, rec *sandboxRecord) error {
	if err := writeJSON(filepath.Join(bundle, configFile), oci); err != nil {
		return err
	}
	rootfs := filepath.Join(bundle, rootfsDir)
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return fmt.Errorf("making the root folder: %w", err)
	}
	layers := spec.Layers
	if len(spec.Mounts) > 0 {
		points := filepath.Join(bundle, mountPointsDir)
		if err := makeMountPoints(points, spec.Mounts); err != nil {
			return err
		}
		layers = append([]string{points}, layers...)
	}
	if err := mountRootfs(rootfs, layers, d.skel); err != nil {
		return err
	}
	return writeJSON(filepath.Join(bundle, sandboxFile), rec)
}

// makeMountPoints makes the layer that holds the mount points of ms (a
// folder or an empty file, like the mount's source), with the folders
// leading to them. The root is read-only, so runc cannot make them. It
// goes at the bottom of the image, above the skeleton: what the image has
// at those paths wins, and runc mounts over it.
func makeMountPoints(dir string, ms []runtime.Mount) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("making the mount point layer: %w", err)
	}
	for _, m := range ms {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return errkind.Errorf(errkind.Invalid, "mount on %s: %w", m.Target, err)
		}
		p := filepath.Join(dir, m.Target)
		if fi.IsDir() {
			err = os.MkdirAll(p, 0o755)
		} else if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			var f *os.File
			if f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
				err = f.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("making the mount point of %s: %w", m.Target, err)
		}
	}
	return nil
}
