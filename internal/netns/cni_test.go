package netns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"noops/internal/errkind"
)

func TestCheckPlugins(t *testing.T) {
	t.Parallel()
	// plugins makes a folder holding the named files with the given mode.
	plugins := func(t *testing.T, mode os.FileMode, names ...string) string {
		dir := t.TempDir()
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), mode); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	cases := []struct {
		name    string
		dirs    func(t *testing.T) []string
		missing string // "" means no error
	}{
		{"empty folder", func(t *testing.T) []string { return []string{plugins(t, 0o755)} }, "bridge, host-local, loopback"},
		{"only bridge", func(t *testing.T) []string { return []string{plugins(t, 0o755, "bridge")} }, "host-local, loopback"},
		{"not executable", func(t *testing.T) []string {
			return []string{plugins(t, 0o644, "bridge", "host-local", "loopback")}
		}, "bridge, host-local, loopback"},
		{"folder missing", func(t *testing.T) []string { return []string{filepath.Join(t.TempDir(), "nope")} }, "bridge, host-local, loopback"},
		{"all in one folder", func(t *testing.T) []string {
			return []string{plugins(t, 0o755, "bridge", "host-local", "loopback")}
		}, ""},
		{"spread over folders", func(t *testing.T) []string {
			return []string{plugins(t, 0o755, "bridge"), plugins(t, 0o755, "host-local", "loopback")}
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dirs := tc.dirs(t)
			err := CheckPlugins(dirs)
			if tc.missing == "" {
				if err != nil {
					t.Fatalf("CheckPlugins(%v) = %v, want nil", dirs, err)
				}
				return
			}
			if !errkind.Is(err, errkind.Unavailable) {
				t.Fatalf("CheckPlugins(%v) = %v (kind %v), want unavailable", dirs, err, errkind.Of(err))
			}
			msg := err.Error()
			if !strings.Contains(msg, "plugins "+tc.missing+" not found") {
				t.Errorf("CheckPlugins(%v) = %q, want it to name missing plugins %q", dirs, msg, tc.missing)
			}
			for _, d := range dirs {
				if !strings.Contains(msg, d) {
					t.Errorf("CheckPlugins(%v) = %q, want it to name folder %s", dirs, msg, d)
				}
			}
			if h := errkind.HintOf(err); !strings.Contains(h, "make setup") || !strings.Contains(h, "containernetworking-plugins") {
				t.Errorf("CheckPlugins hint = %q, want make setup and the package name", h)
			}
		})
	}
}

func TestConfList(t *testing.T) {
	t.Parallel()
	sub, err := parseSubnet("10.99.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		ipMasq bool
		want   []string
	}{
		{"no egress by default", false, []string{`"ipMasq":false`, `"isDefaultGateway":false`}},
		{"masquerade", true, []string{`"ipMasq":true`, `"isDefaultGateway":true`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			list, err := confList("br-x", sub, "/state/ipam", tc.ipMasq)
			if err != nil {
				t.Fatalf("confList: %v", err)
			}
			if list.Name != "noops-br-x" || list.CNIVersion != "1.0.0" {
				t.Errorf("list name, version = %q, %q, want noops-br-x, 1.0.0", list.Name, list.CNIVersion)
			}
			var types []string
			for _, p := range list.Plugins {
				types = append(types, p.Network.Type)
			}
			if got := strings.Join(types, ","); got != "bridge,loopback" {
				t.Errorf("plugins = %s, want bridge,loopback", got)
			}
			br := string(list.Plugins[0].Bytes)
			for _, want := range append([]string{`"bridge":"br-x"`, `"isGateway":true`, `"subnet":"10.99.0.0/16"`, `"dataDir":"/state/ipam"`}, tc.want...) {
				if !strings.Contains(br, want) {
					t.Errorf("bridge plugin config %s lacks %s", br, want)
				}
			}
		})
	}
}
